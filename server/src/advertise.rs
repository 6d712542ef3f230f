//! What clients are told to dial: the UDP addresses in connect tokens, the
//! WebSocket URL in join answers, and the HTTP address other instances
//! redirect players to.
//!
//! Behind NAT, a hostPort, Agones' dynamic ports or a TLS terminator these
//! are not the addresses the process binds. The sources, strongest first:
//! the `public_*` settings (the operator knows best), then the Agones
//! GameServer's `status.address` and named ports, then the bound address
//! with `public_ip` in place of its IP.

use std::net::SocketAddr;

use rampart_net::gateway::{UdpAdvertise, public_address};

use crate::agones::{AgonesError, GameServerAddress};
use crate::config::Config;

/// The addresses this instance advertises.
pub struct Advertise<'a> {
    config: &'a Config,
    game_server: Option<GameServerAddress>,
}

impl<'a> Advertise<'a> {
    /// From the settings and, under Agones, the GameServer.
    pub fn new(config: &'a Config, game_server: Option<GameServerAddress>) -> Self {
        Self {
            config,
            game_server,
        }
    }

    /// What clients dial for each UDP socket.
    ///
    /// # Errors
    /// The GameServer lacks a `udp-<i>` port.
    pub fn udp(&self) -> Result<UdpAdvertise, AgonesError> {
        if !self.config.public_udp_addrs.is_empty() {
            return Ok(UdpAdvertise::Given(self.config.public_udp_addrs.clone()));
        }
        match &self.game_server {
            Some(game_server) => Ok(UdpAdvertise::Given(
                game_server.udp(self.config.udp_sockets)?,
            )),
            None => Ok(UdpAdvertise::Bound(self.config.public_ip)),
        }
    }

    /// The base of WebSocket URLs (`ws://host:port`, `wss://host/prefix`);
    /// the join answer appends `/ws?ticket=...`.
    ///
    /// # Errors
    /// The GameServer lacks a `ws` port.
    pub fn ws_base(&self, bound: SocketAddr) -> Result<String, AgonesError> {
        if let Some(url) = &self.config.public_ws_url {
            return Ok(url.clone());
        }
        match &self.game_server {
            Some(game_server) => game_server.ws_base(),
            None => Ok(format!(
                "ws://{}",
                public_address(bound, self.config.public_ip)
            )),
        }
    }

    /// The base URL of this instance's HTTP API, for the 307s that send
    /// players here from other instances.
    ///
    /// # Errors
    /// The GameServer lacks an `http` port.
    pub fn http_base(&self, bound: SocketAddr) -> Result<String, AgonesError> {
        if let Some(url) = &self.config.public_http_url {
            return Ok(url.clone());
        }
        match &self.game_server {
            Some(game_server) => game_server.http_base(),
            None => Ok(format!(
                "http://{}",
                public_address(bound, self.config.public_ip)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn game_server() -> GameServerAddress {
        GameServerAddress {
            host: "203.0.113.7".to_owned(),
            ip: "203.0.113.7".parse().unwrap(),
            ports: [("udp-0", 7001), ("ws", 7002), ("http", 7003)]
                .into_iter()
                .map(|(name, port)| (name.to_owned(), port))
                .collect(),
        }
    }

    #[test]
    fn settings_beat_the_game_server_which_beats_the_bound_address() {
        let bound: SocketAddr = "0.0.0.0:5080".parse().unwrap();
        let plain = Config::default();
        let advertise = Advertise::new(&plain, None);
        assert_eq!(advertise.udp().unwrap(), UdpAdvertise::Bound(None));
        assert_eq!(advertise.ws_base(bound).unwrap(), "ws://127.0.0.1:5080");

        let agones = Config {
            udp_sockets: 1,
            public_ip: Some("198.51.100.1".parse().unwrap()),
            ..Config::default()
        };
        let advertise = Advertise::new(&agones, Some(game_server()));
        assert_eq!(
            advertise.udp().unwrap(),
            UdpAdvertise::Given(vec!["203.0.113.7:7001".parse().unwrap()]),
            "the GameServer beats public_ip"
        );
        assert_eq!(advertise.ws_base(bound).unwrap(), "ws://203.0.113.7:7002");
        assert_eq!(
            advertise.http_base(bound).unwrap(),
            "http://203.0.113.7:7003"
        );

        let terminated = Config {
            udp_sockets: 1,
            public_ws_url: Some("wss://play.example.com/pods/a".to_owned()),
            public_http_url: Some("https://a.play.example.com".to_owned()),
            public_udp_addrs: vec!["192.0.2.1:9000".parse().unwrap()],
            ..Config::default()
        };
        let advertise = Advertise::new(&terminated, Some(game_server()));
        assert_eq!(
            advertise.udp().unwrap(),
            UdpAdvertise::Given(vec!["192.0.2.1:9000".parse().unwrap()])
        );
        assert_eq!(
            advertise.ws_base(bound).unwrap(),
            "wss://play.example.com/pods/a"
        );
        assert_eq!(
            advertise.http_base(bound).unwrap(),
            "https://a.play.example.com"
        );
    }
}
