//! Settings from environment variables and matching command-line flags,
//! shared by both binaries so that each setting has one name everywhere.
//! A flag (`--name value` or `--name=value`) wins over its variable.

use std::{collections::HashMap, str::FromStr, time::Duration};

/// One setting: its variable, its flag, and what it means (for `--help`).
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The environment variable.
    pub env: &'static str,
    /// The flag, without dashes.
    pub flag: &'static str,
    /// The default, as text, or "" for none.
    pub default: &'static str,
    /// What it does.
    pub help: &'static str,
}

/// A malformed setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag that no setting has.
    #[error("unknown flag --{0} (see --help)")]
    UnknownFlag(String),
    /// A flag without a value.
    #[error("--{0} needs a value")]
    MissingValue(String),
    /// A value that does not parse.
    #[error("{name}: cannot read {value:?}: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// The value given.
        value: String,
        /// Why it does not parse.
        reason: String,
    },
}

/// Resolved settings: flags over variables over defaults.
#[derive(Debug, Clone)]
pub struct Config {
    values: HashMap<&'static str, String>,
}

impl Config {
    /// Reads `settings` from the process's arguments and environment.
    /// Returns `None` when `--help` was asked for (after printing help).
    pub fn load(program: &str, settings: &[Setting]) -> Result<Option<Config>, ConfigError> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.iter().any(|a| a == "--help" || a == "-h") {
            println!("{}", help(program, settings));
            return Ok(None);
        }
        Self::from_parts(settings, &args, |name| std::env::var(name).ok()).map(Some)
    }

    /// Resolves settings from given arguments and a variable lookup.
    pub fn from_parts(
        settings: &[Setting],
        args: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut values = HashMap::new();
        for s in settings {
            if let Some(v) = env(s.env).filter(|v| !v.is_empty()) {
                values.insert(s.env, v);
            } else if !s.default.is_empty() {
                values.insert(s.env, s.default.to_owned());
            }
        }
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(ConfigError::UnknownFlag(arg.clone()));
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (flag, None),
            };
            let setting = settings
                .iter()
                .find(|s| s.flag == name)
                .ok_or_else(|| ConfigError::UnknownFlag(name.to_owned()))?;
            let value = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .cloned()
                    .ok_or_else(|| ConfigError::MissingValue(name.to_owned()))?,
            };
            values.insert(setting.env, value);
        }
        Ok(Config { values })
    }

    /// The setting's text, if set or defaulted.
    pub fn text(&self, env: &'static str) -> Option<&str> {
        self.values.get(env).map(String::as_str)
    }

    /// The setting parsed as `T`.
    pub fn parse<T: FromStr>(&self, env: &'static str) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        self.text(env)
            .map(|v| {
                v.parse().map_err(|e: T::Err| ConfigError::Invalid {
                    name: env,
                    value: v.to_owned(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// The setting as a duration in seconds (fractions allowed).
    pub fn seconds(&self, env: &'static str) -> Result<Option<Duration>, ConfigError> {
        Ok(self
            .parse::<f64>(env)?
            .map(|s| Duration::from_secs_f64(s.max(0.0))))
    }
}

/// The `--help` text: one line per setting.
pub fn help(program: &str, settings: &[Setting]) -> String {
    let mut out = format!("usage: {program} [--flag value]...\n\n");
    for s in settings {
        let default = if s.default.is_empty() {
            String::new()
        } else {
            format!(" (default {})", s.default)
        };
        out.push_str(&format!(
            "  --{:<22} ${:<28} {}{}\n",
            s.flag, s.env, s.help, default
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: [Setting; 2] = [
        Setting {
            env: "CRUNCH_A",
            flag: "a",
            default: "1",
            help: "a",
        },
        Setting {
            env: "CRUNCH_B",
            flag: "b",
            default: "",
            help: "b",
        },
    ];

    #[test]
    fn flags_win_over_variables_which_win_over_defaults() {
        let env = |name: &str| (name == "CRUNCH_B").then(|| "from-env".to_owned());
        let c = Config::from_parts(&SETTINGS, &[], env).unwrap();
        assert_eq!(c.text("CRUNCH_A"), Some("1"));
        assert_eq!(c.text("CRUNCH_B"), Some("from-env"));
        let args = vec!["--b".to_owned(), "flag".to_owned(), "--a=7".to_owned()];
        let c = Config::from_parts(&SETTINGS, &args, env).unwrap();
        assert_eq!(c.parse::<u32>("CRUNCH_A").unwrap(), Some(7));
        assert_eq!(c.text("CRUNCH_B"), Some("flag"));
    }

    #[test]
    fn unknown_flags_and_bad_values_are_errors() {
        let none = |_: &str| None;
        assert!(matches!(
            Config::from_parts(&SETTINGS, &["--nope".to_owned(), "x".to_owned()], none),
            Err(ConfigError::UnknownFlag(_))
        ));
        assert!(matches!(
            Config::from_parts(&SETTINGS, &["--a".to_owned()], none),
            Err(ConfigError::MissingValue(_))
        ));
        let c = Config::from_parts(&SETTINGS, &["--a".to_owned(), "x".to_owned()], none).unwrap();
        assert!(c.parse::<u32>("CRUNCH_A").is_err());
    }
}
