//! Step 1 of the tick: the players' commands, one module per command, each
//! validating in a documented order and answering with a typed rejection.

mod call_wave;
mod place;
mod ready;
mod sell;
mod targeting;
mod upgrade;

use crate::command::{Command, PlayerId, Rejection, TowerId};
use crate::event::Event;
use crate::world::{
    Board, Clock, Enemies, Events, Game, Ids, Players, SessionRules, Tower, Towers, Waves,
};

pub(crate) use place::place_tower;

/// Everything a command may read or change.
pub(crate) struct CommandContext<'a> {
    pub clock: &'a Clock,
    pub rules: &'a SessionRules,
    pub board: &'a mut Board,
    pub players: &'a mut Players,
    pub waves: &'a mut Waves,
    pub ids: &'a mut Ids,
    pub events: &'a mut Events,
    pub towers: &'a mut Towers,
    pub enemies: &'a Enemies,
}

/// The tower `id` if it stands and belongs to `player`.
fn own_tower(towers: &mut Towers, player: PlayerId, id: TowerId) -> Result<&mut Tower, Rejection> {
    let tower = towers.find_mut(id.0).ok_or(Rejection::NoSuchTower)?;
    if tower.owner != player {
        return Err(Rejection::NotYourTower);
    }
    Ok(tower)
}

/// Applies this tick's commands. They are sorted by player (stably, so each
/// player's own order holds): the result does not depend on how the players'
/// messages interleaved on the way in.
pub(crate) fn apply_commands(game: &mut Game) {
    let Game {
        clock,
        rules,
        board,
        players,
        waves,
        ids,
        inbox,
        events,
        towers,
        enemies,
        ..
    } = game;
    // The first step of a tick: last tick's events are gone.
    events.0.clear();
    inbox.pending.sort_by_key(|pending| pending.player);
    let mut context = CommandContext {
        clock,
        rules,
        board,
        players,
        waves,
        ids,
        events,
        towers,
        enemies,
    };
    for pending in inbox.pending.drain(..) {
        let result = apply(&mut context, pending.player, pending.command);
        context.events.0.push(Event::CommandResult {
            ticket: pending.ticket,
            player: pending.player,
            result,
        });
    }
}

fn apply(
    context: &mut CommandContext,
    player: PlayerId,
    command: Command,
) -> Result<(), Rejection> {
    if usize::from(player.0) >= context.players.0.len() {
        return Err(Rejection::UnknownPlayer);
    }
    match command {
        Command::PlaceTower { kind, cell } => place::apply(context, player, kind, cell),
        Command::UpgradeTower { tower } => upgrade::apply(context, player, tower),
        Command::SellTower { tower } => sell::apply(context, player, tower),
        Command::SetTargeting { tower, mode } => targeting::apply(context, player, tower, mode),
        Command::CallNextWave => call_wave::apply(context),
        Command::Ready => ready::apply(context, player),
    }
}

/// Takes `price` from `player`'s gold, or says how much is missing.
fn charge(players: &mut Players, player: PlayerId, price: u32) -> Result<(), Rejection> {
    let gold = &mut players.0[usize::from(player.0)].gold;
    if *gold < price {
        return Err(Rejection::NotEnoughGold {
            needed: price,
            available: *gold,
        });
    }
    *gold -= price;
    Ok(())
}
