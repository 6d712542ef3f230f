//! What one balance game yields: its outcome and length, lives lost per
//! wave, leaks by enemy kind, and gold and kills sampled over time, read
//! from the session's events as the game is played.

use rampart_sim::{Event, Outcome, Session};

/// One game's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct GameRecord {
    /// Its seed.
    pub seed: u64,
    /// How it ended; `None` when it reached the tick limit undecided.
    pub outcome: Option<Outcome>,
    /// Ticks played.
    pub ticks: u64,
    /// Lives left at the end.
    pub lives: u32,
    /// Enemies killed.
    pub kills: u32,
    /// Enemies that reached a goal.
    pub leaks: u32,
    /// Lives lost during each wave (index 0 is wave 1): a leak counts
    /// against the wave started last.
    pub lives_lost_by_wave: Vec<u32>,
    /// Leaks by enemy kind, indexed like `Content::enemies`.
    pub leaks_by_enemy: Vec<u32>,
    /// Every sample interval from the first: (gold earned by all players,
    /// kills) so far.
    pub samples: Vec<(u32, u32)>,
}

impl GameRecord {
    /// An empty record for a game of `enemy_kinds` kinds of enemy.
    pub(crate) fn new(seed: u64, enemy_kinds: usize) -> Self {
        Self {
            seed,
            outcome: None,
            ticks: 0,
            lives: 0,
            kills: 0,
            leaks: 0,
            lives_lost_by_wave: Vec::new(),
            leaks_by_enemy: vec![0; enemy_kinds],
            samples: Vec::new(),
        }
    }

    /// Reads the tick just stepped: its events, and a sample when the
    /// tick ends a sample interval.
    pub(crate) fn observe(&mut self, session: &Session, sample_ticks: u64) {
        for event in session.events() {
            match *event {
                Event::WaveStarted { wave, .. } => {
                    let waves = wave as usize;
                    if self.lives_lost_by_wave.len() < waves {
                        self.lives_lost_by_wave.resize(waves, 0);
                    }
                }
                Event::EnemyLeaked {
                    kind, lives_lost, ..
                } => {
                    if let Some(last) = self.lives_lost_by_wave.last_mut() {
                        *last += lives_lost;
                    }
                    if let Some(count) = self.leaks_by_enemy.get_mut(usize::from(kind.0)) {
                        *count += 1;
                    }
                }
                _ => {}
            }
        }
        if session.tick().is_multiple_of(sample_ticks) {
            let gold = session
                .results()
                .iter()
                .map(|result| result.gold_earned)
                .sum();
            self.samples.push((gold, session.summary().kills));
        }
    }

    /// Takes the final numbers once the game is over.
    pub(crate) fn finish(&mut self, session: &Session) {
        let summary = session.summary();
        self.outcome = summary.outcome;
        self.ticks = summary.tick;
        self.lives = summary.lives;
        self.kills = summary.kills;
        self.leaks = summary.leaks;
    }
}

/// The 95% Wilson score interval of `successes` out of `trials`: unlike
/// the normal approximation it stays inside [0, 1] and is sensible at 0 or
/// all successes and for few games.
pub fn wilson(successes: u32, trials: u32) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    const Z: f64 = 1.959_963_984_540_054;
    let n = f64::from(trials);
    let p = f64::from(successes) / n;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::wilson;

    #[test]
    fn wilson_matches_published_values() {
        // 8 of 10: 0.4902 to 0.9433 (Wilson 1927, as tabulated by Newcombe 1998).
        let (low, high) = wilson(8, 10);
        assert!(
            (low - 0.4902).abs() < 1e-4 && (high - 0.9433).abs() < 1e-4,
            "{low} {high}"
        );
        let (low, high) = wilson(0, 20);
        assert!(
            low.abs() < 1e-9 && (high - 0.1611).abs() < 1e-4,
            "{low} {high}"
        );
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
