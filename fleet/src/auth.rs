//! Who may do what: tokens, each with a name (who is recorded as having made a change) and a
//! role. Made at the service's first start, kept in `STATE_DIR/tokens.json`, readable by its
//! owner only (mode 0600; a file others can read is refused).
//!
//! | role | may |
//! |---|---|
//! | `viewer` | read everything (the dashboard, the API's GETs) |
//! | `controller` | and what an OLT controller does: register, claim, heartbeat, report, fetch images |
//! | `operator` | and change the fleet: packages, campaigns, halts |

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// What a token may do; each role may do what the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads, and an OLT controller's requests.
    Controller,
    /// Everything.
    Operator,
}

/// One token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Who holds it: what the audit log records.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The secret (64 hex digits).
    pub token: String,
}

/// The tokens file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tokens {
    /// Every token.
    pub tokens: Vec<Token>,
}

fn secret() -> String {
    let mut b = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    hex::encode(b)
}

/// Equal, in a time that depends on the lengths only.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Tokens {
    /// The file's path in a state directory.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("tokens.json")
    }

    /// Reads the tokens of `state_dir`, making them (an operator, a controller and a viewer
    /// token) if there are none yet. A file that others than its owner may read is refused.
    pub fn load_or_create(state_dir: &Path) -> Result<(Tokens, bool)> {
        let path = Self::path(state_dir);
        if path.exists() {
            return Ok((Self::load(&path)?, false));
        }
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        let tokens = Tokens {
            tokens: [
                ("operator", Role::Operator),
                ("controller", Role::Controller),
                ("viewer", Role::Viewer),
            ]
            .into_iter()
            .map(|(name, role)| Token {
                name: name.into(),
                role,
                token: secret(),
            })
            .collect(),
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all((serde_json::to_string_pretty(&tokens)? + "\n").as_bytes())?;
        f.sync_all()?;
        Ok((tokens, true))
    }

    /// Reads a tokens file (mode 0600 or stricter).
    pub fn load(path: &Path) -> Result<Tokens> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{} may be read by others than its owner (mode {mode:04o}): chmod 600 it",
                path.display()
            );
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let t: Tokens = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a tokens file", path.display()))?;
        if t.tokens.iter().any(|t| t.token.len() < 32) {
            bail!("{}: a token shorter than 32 characters", path.display());
        }
        Ok(t)
    }

    /// The token a request carries, if it is one of these.
    pub fn check(&self, presented: &str) -> Option<&Token> {
        self.tokens.iter().find(|t| same(&t.token, presented))
    }

    /// The first token of `role`.
    pub fn of(&self, role: Role) -> Option<&Token> {
        self.tokens.iter().find(|t| t.role == role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_made_once_readable_by_their_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let (t, made) = Tokens::load_or_create(dir.path()).unwrap();
        assert!(made);
        let path = Tokens::path(dir.path());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, made) = Tokens::load_or_create(dir.path()).unwrap();
        assert!(!made);
        assert_eq!(again, t);
        let op = t.of(Role::Operator).unwrap();
        assert_eq!(t.check(&op.token).unwrap().name, "operator");
        assert!(t.check("").is_none());
        assert!(t.check(&op.token[1..]).is_none());
        let viewer = t.of(Role::Viewer).unwrap();
        assert!(viewer.role < Role::Controller && Role::Controller < Role::Operator);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Tokens::load(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}
