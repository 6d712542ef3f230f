//! What a balance run changes in the content: `KEY=LOW:HIGH:STEPS` (a
//! multiplier range applied to one number) and `KEY=VALUE` (a value set in
//! every variant). A key names a file and a path in it, as written in
//! `assets/`: `towers.cannon.level.0.damage` is `damage` in the first
//! `[[cannon.level]]` of `towers.toml`; `tribes.orcs.enemy.orc_grunt.hp`,
//! `maps.small.lives`, `waves.small.wave.2.group.0.count` and
//! `scenarios.reference.lives` work the same way. Edits are made to the
//! files' text in memory and the result goes through the content loader,
//! so a value out of range is reported like any other content error.

use std::path::PathBuf;

use rampart_sim::content::ContentFile;

/// Why a change could not be made.
#[derive(Debug, thiserror::Error)]
pub enum VaryError {
    /// The argument is not `KEY=LOW:HIGH:STEPS` or `KEY=VALUE`.
    #[error("`{argument}`: {problem}")]
    Syntax {
        /// As given.
        argument: String,
        /// What is wrong.
        problem: String,
    },
    /// The key names no content file.
    #[error("`{key}`: no content file {file}")]
    NoFile {
        /// The key.
        key: String,
        /// The file it names.
        file: String,
    },
    /// The file does not parse as TOML.
    #[error("{file}: {message}")]
    Toml {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// The path leads nowhere in its file.
    #[error("`{key}`: nothing at `{at}`; there: {available}")]
    NoKey {
        /// The key.
        key: String,
        /// The part of the path that was not found.
        at: String,
        /// What is there instead.
        available: String,
    },
    /// A multiplier range names something other than a number.
    #[error("`{key}` is {found}, not a number to multiply")]
    NotANumber {
        /// The key.
        key: String,
        /// What it is.
        found: &'static str,
    },
}

/// A place in the content: a file and a path of keys and array indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentKey {
    text: String,
    file: PathBuf,
    path: Vec<String>,
}

impl ContentKey {
    /// Reads `towers.cannon.level.0.damage` and the like.
    ///
    /// # Errors
    /// [`VaryError::Syntax`] when the key names no kind of content file or
    /// has no path inside it.
    pub fn parse(text: &str) -> Result<Self, VaryError> {
        let syntax = |problem: &str| VaryError::Syntax {
            argument: text.to_owned(),
            problem: problem.to_owned(),
        };
        let parts: Vec<&str> = text.split('.').collect();
        if parts.iter().any(|part| part.is_empty()) {
            return Err(syntax("empty part in the key"));
        }
        let (file, path) = match parts.as_slice() {
            ["towers", path @ ..] => (PathBuf::from("towers.toml"), path),
            [
                kind @ ("tribes" | "maps" | "waves" | "scenarios"),
                stem,
                path @ ..,
            ] => (PathBuf::from(kind).join(format!("{stem}.toml")), path),
            _ => {
                return Err(syntax(
                    "a key starts with towers, tribes.NAME, maps.NAME, waves.NAME or scenarios.NAME",
                ));
            }
        };
        if path.is_empty() {
            return Err(syntax("the key names a file but nothing in it"));
        }
        Ok(Self {
            text: text.to_owned(),
            file,
            path: path.iter().map(|part| (*part).to_owned()).collect(),
        })
    }

    /// The key as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The path inside the file (`cannon.level.0.damage`): short enough
    /// for a legend, and what a designer looks for in the file.
    pub fn in_file(&self) -> String {
        self.path.join(".")
    }

    /// Changes the value at this key in `files` with `change`, which gets
    /// the old value and returns the new one (or an error).
    fn edit(
        &self,
        files: &mut [ContentFile],
        change: impl FnOnce(&toml::Value) -> Result<toml::Value, VaryError>,
    ) -> Result<toml::Value, VaryError> {
        let file_name = self.file.display().to_string();
        let (_, bytes) = files
            .iter_mut()
            .find(|(rel, _)| *rel == self.file)
            .ok_or_else(|| VaryError::NoFile {
                key: self.text.clone(),
                file: file_name.clone(),
            })?;
        let toml_error = |message: String| VaryError::Toml {
            file: file_name.clone(),
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|error| toml_error(error.to_string()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|error: toml::de::Error| toml_error(error.to_string()))?;
        let mut root = toml::Value::Table(table);
        let mut at = &mut root;
        for (depth, part) in self.path.iter().enumerate() {
            let missing = |available: String| VaryError::NoKey {
                key: self.text.clone(),
                at: self.path[..=depth].join("."),
                available,
            };
            at = match at {
                toml::Value::Table(table) => {
                    let keys = table.keys().cloned().collect::<Vec<_>>().join(", ");
                    table.get_mut(part).ok_or_else(|| missing(keys))?
                }
                toml::Value::Array(array) => {
                    let count = array.len();
                    part.parse::<usize>()
                        .ok()
                        .and_then(|index| array.get_mut(index))
                        .ok_or_else(|| {
                            missing(format!("indices 0 to {}", count.saturating_sub(1)))
                        })?
                }
                other => return Err(missing(format!("a {}", other.type_str()))),
            };
        }
        let new = change(at)?;
        *at = new.clone();
        *bytes = toml::to_string(&root)
            .map_err(|error| toml_error(error.to_string()))?
            .into_bytes();
        Ok(new)
    }
}

/// A multiplier range over one number: `KEY=LOW:HIGH:STEPS`.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// What is multiplied.
    pub key: ContentKey,
    /// The multipliers, low to high.
    pub multipliers: Vec<f64>,
}

impl Axis {
    /// Reads `towers.cannon.level.0.damage=0.8:1.2:5`: five multipliers
    /// from 0.8 to 1.2, evenly spaced.
    ///
    /// # Errors
    /// [`VaryError::Syntax`] naming what is wrong.
    pub fn parse(argument: &str) -> Result<Self, VaryError> {
        let syntax = |problem: &str| VaryError::Syntax {
            argument: argument.to_owned(),
            problem: problem.to_owned(),
        };
        let (key, range) = argument
            .split_once('=')
            .ok_or_else(|| syntax("expected KEY=LOW:HIGH:STEPS"))?;
        let parts: Vec<&str> = range.split(':').collect();
        let [low, high, steps] = parts.as_slice() else {
            return Err(syntax("expected KEY=LOW:HIGH:STEPS"));
        };
        let number = |text: &str| {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|value| value.is_finite() && *value >= 0.0)
                .ok_or_else(|| syntax("multipliers are numbers, 0 or more"))
        };
        let (low, high) = (number(low)?, number(high)?);
        let steps: u32 = steps
            .trim()
            .parse()
            .ok()
            .filter(|steps| (1..=100).contains(steps))
            .ok_or_else(|| syntax("STEPS is a whole number from 1 to 100"))?;
        let multipliers = if steps == 1 {
            vec![low]
        } else {
            (0..steps)
                .map(|step| low + (high - low) * f64::from(step) / f64::from(steps - 1))
                .collect()
        };
        Ok(Self {
            key: ContentKey::parse(key.trim())?,
            multipliers,
        })
    }

    /// Multiplies the number at the key by `multiplier` in `files` and
    /// returns the value written. Whole numbers stay whole (rounded): keys
    /// such as costs and counts take only those; write a value with a
    /// decimal point in the file (`damage = 8.0`) to vary it finely.
    ///
    /// # Errors
    /// When the key leads nowhere or not to a number.
    pub fn apply(
        &self,
        files: &mut [ContentFile],
        multiplier: f64,
    ) -> Result<toml::Value, VaryError> {
        self.key.edit(files, |old| match old {
            toml::Value::Integer(value) => Ok(toml::Value::Integer(
                (*value as f64 * multiplier).round() as i64,
            )),
            toml::Value::Float(value) => Ok(toml::Value::Float(round6(value * multiplier))),
            other => Err(VaryError::NotANumber {
                key: self.key.text.clone(),
                found: other.type_str(),
            }),
        })
    }
}

/// A value set in every variant: `KEY=VALUE`, the value in TOML syntax.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    /// Where.
    pub key: ContentKey,
    /// What.
    pub value: toml::Value,
}

impl Setting {
    /// Reads `scenarios.reference.lives=50` (`name="Other"` for a string).
    ///
    /// # Errors
    /// [`VaryError::Syntax`] naming what is wrong.
    pub fn parse(argument: &str) -> Result<Self, VaryError> {
        let syntax = |problem: String| VaryError::Syntax {
            argument: argument.to_owned(),
            problem,
        };
        let (key, value) = argument
            .split_once('=')
            .ok_or_else(|| syntax("expected KEY=VALUE".to_owned()))?;
        let value: toml::Table =
            format!("value = {}", value.trim())
                .parse()
                .map_err(|error: toml::de::Error| {
                    syntax(format!("the value is not TOML: {}", error.message()))
                })?;
        let value = value
            .get("value")
            .cloned()
            .ok_or_else(|| syntax("no value".to_owned()))?;
        Ok(Self {
            key: ContentKey::parse(key.trim())?,
            value,
        })
    }

    /// Writes the value at the key in `files`.
    ///
    /// # Errors
    /// When the key leads nowhere.
    pub fn apply(&self, files: &mut [ContentFile]) -> Result<(), VaryError> {
        self.key.edit(files, |_| Ok(self.value.clone())).map(drop)
    }
}

/// Six significant decimals: `1.8 * 1.1` is written `1.98`, not
/// `1.9800000000000002`.
fn round6(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;

    use super::{Axis, ContentKey, Setting, VaryError};
    use rampart_sim::content::ContentFile;

    fn files() -> Vec<ContentFile> {
        let towers = "[cannon]\nname = \"Cannon\"\n\n[[cannon.level]]\ncost = 90\ndamage = 30\nreload = 1.8\n";
        vec![(PathBuf::from("towers.toml"), towers.as_bytes().to_vec())]
    }

    fn value(files: &[ContentFile], key: &str) -> toml::Value {
        let table: toml::Table = std::str::from_utf8(&files[0].1).unwrap().parse().unwrap();
        let mut at = &toml::Value::Table(table);
        for part in key.split('.') {
            at = match at {
                toml::Value::Array(array) => &array[part.parse::<usize>().unwrap()],
                other => &other[part],
            };
        }
        at.clone()
    }

    #[test]
    fn a_range_gives_evenly_spaced_multipliers() {
        let axis = Axis::parse("towers.cannon.level.0.damage=0.8:1.2:5").unwrap();
        let expected = [0.8, 0.9, 1.0, 1.1, 1.2];
        for (got, want) in axis.multipliers.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{:?}", axis.multipliers);
        }
        assert_eq!(axis.key.in_file(), "cannon.level.0.damage");
        assert_eq!(
            Axis::parse("maps.small.lives=2:3:1").unwrap().multipliers,
            [2.0]
        );
    }

    #[test]
    fn whole_numbers_stay_whole_and_decimals_round_to_six_places() {
        let mut changed = files();
        let damage = Axis::parse("towers.cannon.level.0.damage=0.9:0.9:1").unwrap();
        assert_eq!(
            damage.apply(&mut changed, 0.9).unwrap(),
            toml::Value::Integer(27)
        );
        let reload = Axis::parse("towers.cannon.level.0.reload=1.1:1.1:1").unwrap();
        assert_eq!(
            reload.apply(&mut changed, 1.1).unwrap(),
            toml::Value::Float(1.98)
        );
        assert_eq!(
            value(&changed, "cannon.level.0.damage"),
            toml::Value::Integer(27)
        );
        assert_eq!(
            value(&changed, "cannon.level.0.cost"),
            toml::Value::Integer(90)
        );
        Setting::parse("towers.cannon.name=\"Mortar\"")
            .unwrap()
            .apply(&mut changed)
            .unwrap();
        assert_eq!(
            value(&changed, "cannon.name"),
            toml::Value::String("Mortar".into())
        );
    }

    #[test]
    fn bad_keys_and_values_say_what_is_there() {
        let mut changed = files();
        let missing = Axis::parse("towers.cannon.levels.0.damage=1:1:1").unwrap();
        let error = missing.apply(&mut changed, 1.0).unwrap_err();
        assert!(
            matches!(&error, VaryError::NoKey { available, .. } if available.contains("level")),
            "{error}"
        );
        let index = Axis::parse("towers.cannon.level.3.damage=1:1:1").unwrap();
        assert!(matches!(
            index.apply(&mut changed, 1.0),
            Err(VaryError::NoKey { .. })
        ));
        let name = Axis::parse("towers.cannon.name=1:2:2").unwrap();
        assert!(matches!(
            name.apply(&mut changed, 1.0),
            Err(VaryError::NotANumber { .. })
        ));
        let file = Axis::parse("maps.nowhere.lives=1:2:2").unwrap();
        assert!(matches!(
            file.apply(&mut changed, 1.0),
            Err(VaryError::NoFile { .. })
        ));
        for bad in ["towers", "units.x.y", "towers..damage"] {
            assert!(ContentKey::parse(bad).is_err(), "{bad}");
        }
        for bad in [
            "towers.cannon.name",
            "towers.a.b=1:2",
            "towers.a.b=1:2:0",
            "towers.a.b=-1:2:3",
        ] {
            assert!(Axis::parse(bad).is_err(), "{bad}");
        }
        assert!(Setting::parse("towers.a.b=not toml").is_err());
    }
}
