//! Settings from the environment: the error that names a variable, and the
//! helpers the worker's configuration and the jobs read their settings with.

use baton::Error;

/// A setting that is missing or malformed: names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::InvalidInput(e.to_string())
    }
}

pub fn config_error(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

/// Environment lookup given to job constructors for their own settings.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A setting from the environment: `default` when unset, an error naming the
/// variable when it does not parse or `valid` rejects it.
pub fn setting<T: std::str::FromStr>(
    get: Lookup<'_>,
    variable: &'static str,
    default: T,
    expected: &str,
    valid: impl Fn(&T) -> bool,
) -> Result<T, ConfigError> {
    let Some(text) = get(variable) else {
        return Ok(default);
    };
    text.parse::<T>()
        .ok()
        .filter(|v| valid(v))
        .ok_or_else(|| ConfigError {
            variable,
            message: format!("expected {expected}, got {text:?}"),
        })
}
