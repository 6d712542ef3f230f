//! `tribes/*.toml`: each tribe and its enemy kinds. Enemy keys are global
//! across tribes (waves name an enemy, not a tribe), so a key declared twice
//! is reported with where it was first declared.

use std::collections::BTreeMap;

use super::Loader;
use super::walker::{Cx, Source, Tab, to_u16};
use crate::content::{EnemyKind, EnemyKindId, Resistances, Tribe, TribeId};

impl Loader {
    /// The tribes and every tribe's enemy kinds, each sorted by key, so an
    /// `EnemyKindId` indexes the enemies and each tribe lists its own.
    pub(super) fn tribes<'s>(
        &mut self,
        sources: impl Iterator<Item = &'s Source>,
    ) -> (Vec<Tribe>, Vec<EnemyKind>) {
        // Enemy drafts carry their tribe key until tribe ids are known.
        let mut drafts: Vec<(String, EnemyKind)> = Vec::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut tribes = Vec::new();
        for source in sources {
            let tribe_key = source.stem();
            let (root, mut cx) = self.parse(source);
            let tab = Tab {
                table: &root,
                at: 0,
                what: format!("tribe `{tribe_key}`"),
            };
            cx.known_keys(&tab, &["name", "enemy"]);
            let name = cx.name(&tab);
            if let Some(enemies) = cx.subtable(
                &tab,
                "enemy",
                true,
                format!("enemies of tribe `{tribe_key}`"),
            ) {
                if enemies.table.is_empty() {
                    cx.error(
                        enemies.at,
                        format!("tribe `{tribe_key}` has no enemy kinds"),
                    );
                }
                for (key, value) in enemies.table.iter() {
                    let key_text = key.get_ref().to_string();
                    cx.check_key(&key_text, key.span().start, "enemy");
                    let (line, column) = source.position(key.span().start);
                    let here = format!("{}:{line}:{column}", source.rel.display());
                    if let Some(first) = seen.insert(key_text.clone(), here.clone()) {
                        cx.error(
                            key.span().start,
                            format!(
                                "duplicate enemy kind `{key_text}` (first declared at {first})"
                            ),
                        );
                        seen.insert(key_text.clone(), first);
                        continue;
                    }
                    let Some(enemy) = cx.as_tab(value, &key_text, format!("enemy `{key_text}`"))
                    else {
                        continue;
                    };
                    let place = cx.place(key.span().start);
                    cx.places.enemies.insert(key_text.clone(), place);
                    drafts.push((tribe_key.clone(), enemy_kind(&mut cx, &enemy, key_text)));
                }
            }
            tribes.push(Tribe {
                key: tribe_key,
                name,
                enemies: Vec::new(),
            });
        }
        tribes.sort_by(|a, b| a.key.cmp(&b.key));
        drafts.sort_by(|a, b| a.1.key.cmp(&b.1.key));
        let mut enemies = Vec::with_capacity(drafts.len());
        for (index, (tribe_key, mut enemy)) in drafts.into_iter().enumerate() {
            let tribe = tribes.iter().position(|t| t.key == tribe_key).unwrap_or(0);
            enemy.tribe = TribeId(to_u16(tribe));
            tribes[tribe].enemies.push(EnemyKindId(to_u16(index)));
            enemies.push(enemy);
        }
        (tribes, enemies)
    }
}

fn enemy_kind(cx: &mut Cx<'_>, tab: &Tab<'_, '_>, key: String) -> EnemyKind {
    cx.known_keys(
        tab,
        &[
            "name",
            "hp",
            "armour",
            "speed",
            "bounty",
            "lives_cost",
            "flying",
            "resist",
        ],
    );
    let resist = cx
        .subtable(tab, "resist", false, format!("`resist` of {}", tab.what))
        .map(|resist| {
            cx.known_keys(&resist, &["physical", "magic", "fire"]);
            Resistances {
                physical: cx.number(&resist, "physical", 0.0..=0.95, Some(0.0)),
                magic: cx.number(&resist, "magic", 0.0..=0.95, Some(0.0)),
                fire: cx.number(&resist, "fire", 0.0..=0.95, Some(0.0)),
            }
        });
    EnemyKind {
        key,
        name: cx.name(tab),
        tribe: TribeId(0),
        hp: cx.number(tab, "hp", 1.0..=1_000_000.0, None),
        armour: cx.number(tab, "armour", 0.0..=1000.0, Some(0.0)),
        speed: cx.number(tab, "speed", 0.1..=20.0, None),
        bounty: cx.integer(tab, "bounty", 0..=10_000, None) as u32,
        lives_cost: cx.integer(tab, "lives_cost", 1..=1000, Some(1)) as u32,
        flying: cx.boolean(tab, "flying", false),
        resist: resist.unwrap_or_default(),
    }
}
