//! The tiny command-line protocol between `cargo xtask bench` and the measuring binaries: arguments
//! are `--key value` pairs; each run prints one line `RESULT key=value ...` on stdout.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;

/// `--key value` arguments.
#[derive(Debug, Default)]
pub struct Args {
    values: BTreeMap<String, String>,
}

impl Args {
    /// Parses this process's arguments.
    pub fn from_env() -> Result<Self, String> {
        Self::parse(std::env::args().skip(1))
    }

    /// Parses `--key value` pairs.
    pub fn parse(arguments: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut values = BTreeMap::new();
        let mut arguments = arguments.into_iter();
        while let Some(key) = arguments.next() {
            let name = key
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --key, got `{key}`"))?;
            let value = arguments
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            values.insert(name.to_string(), value);
        }
        Ok(Self { values })
    }

    /// The value of `--name`, which must be present.
    pub fn required<T: FromStr>(&self, name: &str) -> Result<T, String>
    where
        T::Err: Display,
    {
        let text = self
            .values
            .get(name)
            .ok_or_else(|| format!("missing --{name}"))?;
        text.parse()
            .map_err(|error| format!("--{name} {text}: {error}"))
    }

    /// The value of `--name`, or `default` when absent.
    pub fn optional<T: FromStr>(&self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: Display,
    {
        if self.values.contains_key(name) {
            self.required(name)
        } else {
            Ok(default)
        }
    }
}

/// Prints the one machine-readable line of a run: `RESULT key=value ...`.
pub fn print_result(fields: &[(&str, String)]) {
    let mut line = String::from("RESULT");
    for (key, value) in fields {
        line.push(' ');
        line.push_str(key);
        line.push('=');
        line.push_str(value);
    }
    println!("{line}");
}
