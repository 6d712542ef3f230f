//! `towers.toml`: every tower kind with its levels (the build and each
//! upgrade), what it targets and how its shots fly.

use super::Loader;
use super::walker::{Cx, Source, Tab};
use crate::content::{
    DamageOverTime, DamageType, Flight, Slow, TargetFilter, TowerKind, TowerLevel,
};

impl Loader {
    /// The tower kinds, sorted by key: a `TowerKindId` indexes them.
    pub(super) fn towers(&mut self, source: &Source) -> Vec<TowerKind> {
        let (root, mut cx) = self.parse(source);
        let mut towers = Vec::new();
        for (key, value) in root.iter() {
            let key_text = key.get_ref().to_string();
            cx.check_key(&key_text, key.span().start, "tower");
            let place = cx.place(key.span().start);
            cx.places.towers.insert(key_text.clone(), place);
            let Some(tab) = cx.as_tab(value, &key_text, format!("tower `{key_text}`")) else {
                continue;
            };
            cx.known_keys(&tab, &["name", "targets", "flight", "sell_refund", "level"]);
            let name = cx.name(&tab);
            let mut targets = TargetFilter {
                ground: false,
                air: false,
            };
            if let Some((array, at)) = cx.array(&tab, "targets", true) {
                for item in array.iter() {
                    match item.get_ref().as_str() {
                        Some("ground") if !targets.ground => targets.ground = true,
                        Some("air") if !targets.air => targets.air = true,
                        Some(other @ ("ground" | "air")) => {
                            cx.error(item.span().start, format!("`{other}` listed twice"))
                        }
                        _ => cx.error(
                            item.span().start,
                            "`targets` entries must be \"ground\" or \"air\"",
                        ),
                    }
                }
                if array.is_empty() {
                    cx.error(
                        at,
                        "`targets` must name at least one of \"ground\", \"air\"",
                    );
                }
            }
            let flight = match cx.choice(&tab, "flight", &["homing", "ballistic"], None) {
                1 => Flight::Ballistic,
                _ => Flight::Homing,
            };
            let sell_refund = cx.number(&tab, "sell_refund", 0.0..=1.0, None);
            let levels = cx
                .tables(&tab, "level", 1, 5, |i| {
                    format!("level {i} of tower `{key_text}`")
                })
                .iter()
                .map(|level| tower_level(&mut cx, level))
                .collect();
            towers.push(TowerKind {
                key: key_text,
                name,
                targets,
                flight,
                sell_refund,
                levels,
            });
        }
        towers.sort_by(|a, b| a.key.cmp(&b.key));
        towers
    }
}

fn tower_level(cx: &mut Cx<'_>, tab: &Tab<'_, '_>) -> TowerLevel {
    cx.known_keys(
        tab,
        &[
            "cost",
            "range",
            "reload",
            "damage",
            "damage_type",
            "projectile_speed",
            "splash_radius",
            "slow",
            "dot",
        ],
    );
    let damage_type = match cx.choice(tab, "damage_type", &["physical", "magic", "fire"], None) {
        1 => DamageType::Magic,
        2 => DamageType::Fire,
        _ => DamageType::Physical,
    };
    let slow = cx
        .subtable(tab, "slow", false, format!("`slow` of {}", tab.what))
        .map(|slow| {
            cx.known_keys(&slow, &["factor", "seconds"]);
            Slow {
                factor: cx.number(&slow, "factor", 0.05..=0.95, None),
                seconds: cx.number(&slow, "seconds", 0.1..=30.0, None),
            }
        });
    let dot = cx
        .subtable(tab, "dot", false, format!("`dot` of {}", tab.what))
        .map(|dot| {
            cx.known_keys(&dot, &["per_second", "seconds"]);
            DamageOverTime {
                per_second: cx.number(&dot, "per_second", 0.1..=10_000.0, None),
                seconds: cx.number(&dot, "seconds", 0.1..=30.0, None),
            }
        });
    TowerLevel {
        cost: cx.integer(tab, "cost", 0..=100_000, None) as u32,
        range: cx.number(tab, "range", 0.5..=20.0, None),
        reload: cx.number(tab, "reload", 0.05..=60.0, None),
        damage: cx.number(tab, "damage", 0.0..=100_000.0, None),
        damage_type,
        projectile_speed: cx.number(tab, "projectile_speed", 1.0..=100.0, None),
        splash_radius: cx.number(tab, "splash_radius", 0.0..=5.0, Some(0.0)),
        slow,
        dot,
    }
}
