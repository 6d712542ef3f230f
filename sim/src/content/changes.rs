//! What changed between two content versions, by kind and key: what a
//! server that reloads content tells the designer who saved a file.
//!
//! Items are compared as the loader built them, so a change that only
//! shifts ids (a tower kind added before others alphabetically) shows the
//! items that refer to them as changed too: what sessions run did change.

use serde::Serialize;

use super::Content;

/// Added, removed and changed keys of one kind, each sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KeyChanges {
    /// Keys only the new content has.
    pub added: Vec<String>,
    /// Keys only the old content had.
    pub removed: Vec<String>,
    /// Keys both have, with different definitions.
    pub changed: Vec<String>,
}

impl KeyChanges {
    /// Compares two lists of items sorted by key.
    fn between<T: PartialEq>(old: &[T], new: &[T], key: impl Fn(&T) -> &str) -> Self {
        let mut changes = Self::default();
        let (mut a, mut b) = (old.iter().peekable(), new.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => return changes,
                (Some(gone), None) => {
                    changes.removed.push(key(gone).to_owned());
                    a.next();
                }
                (None, Some(came)) => {
                    changes.added.push(key(came).to_owned());
                    b.next();
                }
                (Some(was), Some(is)) => match key(was).cmp(key(is)) {
                    std::cmp::Ordering::Less => {
                        changes.removed.push(key(was).to_owned());
                        a.next();
                    }
                    std::cmp::Ordering::Greater => {
                        changes.added.push(key(is).to_owned());
                        b.next();
                    }
                    std::cmp::Ordering::Equal => {
                        if was != is {
                            changes.changed.push(key(is).to_owned());
                        }
                        a.next();
                        b.next();
                    }
                },
            }
        }
    }

    /// Nothing added, removed or changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// What differs between two content versions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ContentChanges {
    /// Tower kinds.
    pub towers: KeyChanges,
    /// Enemy kinds.
    pub enemies: KeyChanges,
    /// Maps, their waves included.
    pub maps: KeyChanges,
    /// Scenarios.
    pub scenarios: KeyChanges,
}

impl ContentChanges {
    /// What `new` adds, removes and changes relative to `old`.
    pub fn between(old: &Content, new: &Content) -> Self {
        Self {
            towers: KeyChanges::between(&old.towers, &new.towers, |t| &t.key),
            enemies: KeyChanges::between(&old.enemies, &new.enemies, |e| &e.key),
            maps: KeyChanges::between(&old.maps, &new.maps, |m| &m.key),
            scenarios: KeyChanges::between(&old.scenarios, &new.scenarios, |s| &s.key),
        }
    }

    /// Nothing a session could tell apart changed (a comment or the
    /// README, say).
    pub fn is_empty(&self) -> bool {
        self.towers.is_empty()
            && self.enemies.is_empty()
            && self.maps.is_empty()
            && self.scenarios.is_empty()
    }
}

impl std::fmt::Display for ContentChanges {
    /// One line: `towers: changed arrow; maps: added canyon, removed small`,
    /// or `no definition changed`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("no definition changed");
        }
        let kinds = [
            ("towers", &self.towers),
            ("enemies", &self.enemies),
            ("maps", &self.maps),
            ("scenarios", &self.scenarios),
        ];
        let mut first = true;
        for (kind, changes) in kinds.into_iter().filter(|(_, c)| !c.is_empty()) {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{kind}:")?;
            let parts = [
                ("added", &changes.added),
                ("removed", &changes.removed),
                ("changed", &changes.changed),
            ];
            let mut separator = " ";
            for (what, keys) in parts.into_iter().filter(|(_, keys)| !keys.is_empty()) {
                write!(f, "{separator}{what} {}", keys.join(", "))?;
                separator = ", ";
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn assets() -> Content {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
        crate::content::load_dir(&dir).unwrap()
    }

    #[test]
    fn names_what_was_added_removed_and_changed() {
        let old = assets();
        let mut new = old.clone();
        assert!(ContentChanges::between(&old, &new).is_empty());
        new.towers[0].levels[0].cost += 10;
        let first_map = new.maps.remove(0);
        let mut renamed = new.scenarios[0].clone();
        renamed.key = "zz_extra".to_owned();
        new.scenarios.push(renamed);
        let changes = ContentChanges::between(&old, &new);
        assert_eq!(
            changes.towers.changed,
            std::slice::from_ref(&old.towers[0].key)
        );
        assert_eq!(changes.maps.removed, std::slice::from_ref(&first_map.key));
        assert_eq!(changes.scenarios.added, ["zz_extra"]);
        assert!(changes.enemies.is_empty());
        assert_eq!(
            changes.to_string(),
            format!(
                "towers: changed {}; maps: removed {}; scenarios: added zz_extra",
                old.towers[0].key, first_map.key
            )
        );
    }
}
