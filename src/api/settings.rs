//! The controller's effective settings: the ControllerConfig manifest with the
//! environment's overrides (`FAILOVER_TMUX_SOCKET`, `FAILOVER_STATE_DIR`) applied and
//! the defaults resolved.

use std::ffi::OsString;
use std::path::PathBuf;

use super::ControllerConfigSpec;

/// Overrides the manifest's `tmux.socket`.
pub const ENV_TMUX_SOCKET: &str = "FAILOVER_TMUX_SOCKET";
/// Overrides the manifest's `tmux.config`.
pub const ENV_TMUX_CONFIG: &str = "FAILOVER_TMUX_CONFIG";
/// Overrides the manifest's `stateDir`.
pub const ENV_STATE_DIR: &str = "FAILOVER_STATE_DIR";

/// The settings a controller or a one-shot command runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The tmux socket; `None` is the user's default server.
    pub socket: Option<PathBuf>,
    /// The tmux configuration file used when failover starts the server.
    pub tmux_config: Option<PathBuf>,
    /// The state folder.
    pub state_dir: PathBuf,
    /// Everything else, as the manifest says.
    pub spec: ControllerConfigSpec,
}

/// The settings could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// No state folder given and no `XDG_STATE_HOME` or `HOME` to derive one from.
    #[error("no state folder: set stateDir, {ENV_STATE_DIR}, XDG_STATE_HOME or HOME")]
    NoStateDir,
    /// An override from the environment is not an absolute path.
    #[error("{var}: path {path:?} is not absolute")]
    NotAbsolute {
        /// The variable.
        var: &'static str,
        /// Its value.
        path: PathBuf,
    },
}

impl Settings {
    /// Resolves `spec` against the process environment.
    pub fn from_env(spec: &ControllerConfigSpec) -> Result<Self, SettingsError> {
        Self::resolve(spec, |name| std::env::var_os(name))
    }

    /// Resolves `spec` against the environment `env` gives.
    pub fn resolve(
        spec: &ControllerConfigSpec,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self, SettingsError> {
        let var = |name: &'static str| -> Result<Option<PathBuf>, SettingsError> {
            match env(name).filter(|v| !v.is_empty()).map(PathBuf::from) {
                Some(path) if !path.is_absolute() => {
                    Err(SettingsError::NotAbsolute { var: name, path })
                }
                other => Ok(other),
            }
        };
        let socket = var(ENV_TMUX_SOCKET)?.or_else(|| {
            (!spec.tmux.socket.as_os_str().is_empty()).then(|| spec.tmux.socket.clone())
        });
        let tmux_config = var(ENV_TMUX_CONFIG)?.or_else(|| {
            (!spec.tmux.config.as_os_str().is_empty()).then(|| spec.tmux.config.clone())
        });
        let state_dir = match var(ENV_STATE_DIR)? {
            Some(dir) => dir,
            None if !spec.state_dir.as_os_str().is_empty() => spec.state_dir.clone(),
            None => {
                let xdg = env("XDG_STATE_HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute());
                let home = env("HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .map(|h| h.join(".local/state"));
                xdg.or(home)
                    .ok_or(SettingsError::NoStateDir)?
                    .join("failover")
            }
        };
        Ok(Self {
            socket,
            tmux_config,
            state_dir,
            spec: spec.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn settings_should_prefer_the_environment_over_the_manifest() {
        let mut spec = ControllerConfigSpec::default();
        spec.tmux.socket = "/run/manifest.sock".into();
        spec.state_dir = "/var/manifest".into();
        let s = Settings::resolve(
            &spec,
            env(&[
                (ENV_TMUX_SOCKET, "/tmp/t/sock"),
                (ENV_STATE_DIR, "/tmp/state"),
            ]),
        )
        .unwrap();
        assert_eq!(s.socket, Some("/tmp/t/sock".into()));
        assert_eq!(s.state_dir, PathBuf::from("/tmp/state"));
        let s = Settings::resolve(&spec, env(&[])).unwrap();
        assert_eq!(s.socket, Some("/run/manifest.sock".into()));
        assert_eq!(s.state_dir, PathBuf::from("/var/manifest"));
    }

    #[test]
    fn settings_should_default_to_xdg_then_home() {
        let spec = ControllerConfigSpec::default();
        let s = Settings::resolve(&spec, env(&[("XDG_STATE_HOME", "/x"), ("HOME", "/h")])).unwrap();
        assert_eq!(s.state_dir, PathBuf::from("/x/failover"));
        assert_eq!(s.socket, None);
        let s = Settings::resolve(&spec, env(&[("HOME", "/h")])).unwrap();
        assert_eq!(s.state_dir, PathBuf::from("/h/.local/state/failover"));
        assert!(Settings::resolve(&spec, env(&[])).is_err());
    }

    #[test]
    fn settings_should_reject_relative_overrides() {
        let spec = ControllerConfigSpec::default();
        let err = Settings::resolve(&spec, env(&[(ENV_STATE_DIR, "state")])).unwrap_err();
        assert!(err.to_string().contains("FAILOVER_STATE_DIR"), "{err}");
    }
}
