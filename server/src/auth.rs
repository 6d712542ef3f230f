//! Who a player is. With a JWT key configured, `POST /v1/join` needs the
//! player's bearer token and the player is its `sub`, so nobody can join or
//! reclaim a seat as someone else. Without one the server runs in
//! anonymous development mode: every join is a new anonymous player, and a
//! seat can be reclaimed only with its reconnect token.

use std::path::PathBuf;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::Config;

/// How players prove who they are.
pub enum PlayerAuth {
    /// Development: no proof; each join is a fresh anonymous player.
    Anonymous,
    /// Bearer JWTs checked with this key.
    Jwt {
        /// The verification key.
        key: Box<DecodingKey>,
        /// Algorithm, issuer, audience and expiry checks.
        validation: Box<Validation>,
    },
}

/// Why the auth configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// Both a secret and a public key.
    #[error("set auth_jwt_secret or auth_jwt_public_key, not both")]
    Both,
    /// The PEM file cannot be read.
    #[error("{path}: cannot read the JWT public key: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The PEM is neither an Ed25519 nor an RSA public key.
    #[error("{path}: not an Ed25519 or RSA public key in PEM form")]
    NotAKey {
        /// The file.
        path: PathBuf,
    },
    /// The secret is unusable.
    #[error("auth_jwt_secret: {0}")]
    Secret(jsonwebtoken::errors::Error),
}

/// Why a join was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No bearer token where one is required.
    #[error("missing `Authorization: Bearer <player JWT>` header")]
    Missing,
    /// The token does not verify.
    #[error("invalid player token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

#[derive(Deserialize)]
struct PlayerClaims {
    sub: String,
}

impl PlayerAuth {
    /// From `auth_jwt_secret` (HS256) or `auth_jwt_public_key` (EdDSA or
    /// RS256, told apart by the key), with `auth_issuer` and
    /// `auth_audience` checked when set.
    ///
    /// # Errors
    /// Both keys set, or a key that cannot be read or parsed.
    pub fn from_config(config: &Config) -> Result<Self, AuthConfigError> {
        let (key, algorithm) = match (&config.auth_jwt_secret, &config.auth_jwt_public_key) {
            (None, None) => return Ok(Self::Anonymous),
            (Some(_), Some(_)) => return Err(AuthConfigError::Both),
            (Some(secret), None) => (
                DecodingKey::from_secret(secret.as_bytes()).map_err(AuthConfigError::Secret)?,
                Algorithm::HS256,
            ),
            (None, Some(path)) => {
                let pem = std::fs::read(path).map_err(|error| AuthConfigError::Read {
                    path: path.clone(),
                    error,
                })?;
                if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
                    (key, Algorithm::EdDSA)
                } else if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                    (key, Algorithm::RS256)
                } else {
                    return Err(AuthConfigError::NotAKey { path: path.clone() });
                }
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &config.auth_issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &config.auth_audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Ok(Self::Jwt {
            key: Box::new(key),
            validation: Box::new(validation),
        })
    }

    /// True in anonymous development mode.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Self::Anonymous)
    }

    /// The player's identity: the token's `sub`, or a fresh anonymous id.
    ///
    /// # Errors
    /// A token is required and missing, or does not verify.
    pub fn identify(&self, bearer: Option<&str>) -> Result<String, AuthError> {
        match self {
            Self::Anonymous => Ok(format!("anon-{}", rampart_net::tickets::random_token())),
            Self::Jwt { key, validation } => {
                let token = bearer.ok_or(AuthError::Missing)?;
                let claims = jsonwebtoken::decode::<PlayerClaims>(token, key, validation)?.claims;
                Ok(claims.sub)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde::Serialize;

    #[derive(Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        exp: u64,
        iss: &'a str,
        aud: &'a str,
    }

    fn token(secret: &str, sub: &str, iss: &str, exp: u64) -> String {
        let claims = Claims {
            sub,
            exp,
            iss,
            aud: "rampart",
        };
        let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    }

    #[test]
    fn hs256_tokens_name_the_player_and_are_checked() {
        let config = Config {
            auth_jwt_secret: Some("s3cret".into()),
            auth_issuer: Some("https://auth.test/".into()),
            auth_audience: Some("rampart".into()),
            ..Config::default()
        };
        let auth = PlayerAuth::from_config(&config).unwrap();
        let later = jsonwebtoken::get_current_timestamp() + 600;
        let good = token("s3cret", "alice", "https://auth.test/", later);
        assert_eq!(auth.identify(Some(&good)).unwrap(), "alice");
        assert!(matches!(auth.identify(None), Err(AuthError::Missing)));
        let forged = token("guess", "alice", "https://auth.test/", later);
        assert!(auth.identify(Some(&forged)).is_err());
        let foreign = token("s3cret", "alice", "https://evil.test/", later);
        assert!(auth.identify(Some(&foreign)).is_err());
        let expired = token("s3cret", "alice", "https://auth.test/", 1_000);
        assert!(auth.identify(Some(&expired)).is_err());
    }

    #[test]
    fn anonymous_players_are_each_new() {
        let auth = PlayerAuth::from_config(&Config::default()).unwrap();
        assert!(auth.is_anonymous());
        assert_ne!(auth.identify(None).unwrap(), auth.identify(None).unwrap());
    }
}
