//! Where the CLI finds its broker: `--bootstrap`, then `WEIR_BOOTSTRAP`, then the chosen
//! profile of the config file, then localhost:9092.
//!
//! The config file (`--config`, `WEIR_CONFIG`, or `$XDG_CONFIG_HOME/weir/config.toml`,
//! falling back to `~/.config/weir/config.toml`) holds named profiles:
//!
//! ```toml
//! default_profile = "local"
//! [profiles.local]
//! bootstrap = "localhost:9092"
//! [profiles.staging]
//! bootstrap = "kafka-staging.internal:9092"
//! [profiles.staging.client]
//! "security.protocol" = "SASL_SSL"
//! "sasl.mechanism" = "SCRAM-SHA-512"
//! "sasl.username" = "ops"
//! "ssl.ca.location" = "/etc/weir/ca.pem"
//! ```
//!
//! A profile's `client` table holds client properties ([`crate::client_security`]); `-X`
//! flags override them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use serde::Deserialize;

pub const DEFAULT_BOOTSTRAP: &str = "localhost:9092";

#[derive(Deserialize, Default)]
struct ConfigFile {
    default_profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

#[derive(Deserialize)]
struct Profile {
    bootstrap: String,
    #[serde(default)]
    client: BTreeMap<String, String>,
}

fn config_path(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit
        .or_else(|| std::env::var_os("WEIR_CONFIG").map(PathBuf::from))
        .or_else(|| {
            std::env::var_os("XDG_CONFIG_HOME")
                .map(|d| PathBuf::from(d).join("weir").join("config.toml"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| {
                PathBuf::from(h)
                    .join(".config")
                    .join("weir")
                    .join("config.toml")
            })
        })
}

/// The bootstrap address and the client properties of the chosen profile.
pub fn resolve(
    flag: Option<String>,
    profile: Option<String>,
    config: Option<PathBuf>,
) -> anyhow::Result<(String, BTreeMap<String, String>)> {
    let properties = match chosen_profile(profile.clone(), config.clone())? {
        Some(p) => p.client,
        None => BTreeMap::new(),
    };
    Ok((resolve_bootstrap(flag, profile, config)?, properties))
}

/// The profile named (or the file's default), if there is a config file with one.
fn chosen_profile(
    profile: Option<String>,
    config: Option<PathBuf>,
) -> anyhow::Result<Option<Profile>> {
    let path = config_path(config);
    let Some(p) = path.filter(|p| p.exists()) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&p)
        .with_context(|| format!("cannot read config file {}", p.display()))?;
    let mut file = toml::from_str::<ConfigFile>(&text)
        .map_err(|e| anyhow!("config file {} is not valid: {}", p.display(), e.message()))?;
    Ok(profile
        .or(file.default_profile.clone())
        .and_then(|n| file.profiles.remove(&n)))
}

pub fn resolve_bootstrap(
    flag: Option<String>,
    profile: Option<String>,
    config: Option<PathBuf>,
) -> anyhow::Result<String> {
    if let Some(b) = flag {
        return Ok(b);
    }
    if let Some(b) = std::env::var("WEIR_BOOTSTRAP")
        .ok()
        .filter(|b| !b.is_empty())
    {
        if profile.is_none() {
            return Ok(b);
        }
    }
    let explicit = config.is_some();
    let path = config_path(config);
    let file = match &path {
        Some(p) if p.exists() => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config file {}", p.display()))?;
            toml::from_str::<ConfigFile>(&text)
                .map_err(|e| anyhow!("config file {} is not valid: {}", p.display(), e.message()))?
        }
        Some(p) if explicit => return Err(anyhow!("config file {} does not exist", p.display())),
        _ => ConfigFile::default(),
    };
    let name = profile.or(file.default_profile.clone());
    match name {
        Some(n) => file
            .profiles
            .get(&n)
            .map(|p| p.bootstrap.clone())
            .ok_or_else(|| {
                let known: Vec<&String> = file.profiles.keys().collect();
                anyhow!(
                    "profile '{n}' is not in {}; profiles there: {known:?}",
                    path.map(|p| p.display().to_string())
                        .unwrap_or_else(|| "the config file".into())
                )
            }),
        None => Ok(DEFAULT_BOOTSTRAP.to_string()),
    }
}
