//! Which login an account home holds, read without keeping or printing a secret: the
//! account and organisation ids and the e-mail Claude Code records in `.claude.json`
//! (`oauthAccount`), and from `.credentials.json` only whether a login is there, its plan
//! and when its access token expires. The tokens themselves are never deserialized.
//!
//! `failover init` uses it to name accounts and write each login once; `failover doctor`
//! to find two accounts that are the same login (compared by account id, never by
//! token) and logins that expired.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Deserialize;

/// Claude Code's settings file in a home (`CLAUDE_CONFIG_DIR`).
pub(crate) const CONFIG_FILE: &str = ".claude.json";
/// Claude Code's subscription login in a home.
pub(crate) const CREDENTIALS_FILE: &str = ".credentials.json";

/// Why a home's login cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A file is there but cannot be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is there but is not the JSON Claude Code writes.
    #[error("{path}: not valid JSON: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// What a home says about its login. Holds no token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Login {
    /// The account's id (`oauthAccount.accountUuid`): the same id in two homes is one
    /// login, one quota.
    pub account_id: Option<String>,
    /// The organisation's id (`oauthAccount.organizationUuid`).
    pub organization_id: Option<String>,
    /// The e-mail address the login belongs to.
    pub email: Option<String>,
    /// Whether `.credentials.json` holds a subscription login.
    pub has_credentials: bool,
    /// The plan the credentials say (`max`, `pro`, …).
    pub subscription: Option<String>,
    /// When the access token expires, where the home says.
    pub expires_at: Option<Timestamp>,
    /// The settings file the identity was read from.
    pub config_file: Option<PathBuf>,
}

impl Login {
    /// Whether the home holds anything that looks like a login.
    pub(crate) fn is_present(&self) -> bool {
        self.has_credentials || self.account_id.is_some()
    }

    /// The key two homes are compared by: the account and the organisation, never a token.
    pub(crate) fn identity(&self) -> Option<(String, Option<String>)> {
        self.account_id
            .clone()
            .map(|id| (id, self.organization_id.clone()))
    }

    /// A name for the login fit to print: the e-mail, else the account id.
    pub(crate) fn label(&self) -> Option<&str> {
        self.email.as_deref().or(self.account_id.as_deref())
    }

    /// Whether the access token expired before `now`, where the home says when.
    pub(crate) fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

#[cfg(test)]
impl Login {
    /// A login of account `id` (organisation `org`, plan `max`) for tests, expiring at
    /// `expires` (seconds since the epoch) when given.
    pub(crate) fn fixture(id: &str, email: &str, expires: Option<i64>) -> Self {
        Self {
            account_id: Some(id.to_owned()),
            organization_id: Some("org".to_owned()),
            email: Some(email.to_owned()),
            has_credentials: true,
            subscription: Some("max".to_owned()),
            expires_at: expires.map(|s| Timestamp::from_second(s).expect("a time in range")),
            config_file: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    oauth_account: Option<OauthAccount>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OauthAccount {
    account_uuid: Option<String>,
    organization_uuid: Option<String>,
    email_address: Option<String>,
}

/// Only the fields that are not secrets: serde skips the tokens without keeping them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialsFile {
    claude_ai_oauth: Option<OauthCredentials>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OauthCredentials {
    expires_at: Option<i64>,
    subscription_type: Option<String>,
}

/// Whether `dir` looks like a Claude Code home: it holds `.claude.json` or
/// `.credentials.json`.
pub(crate) fn is_home(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).is_file() || dir.join(CREDENTIALS_FILE).is_file()
}

/// The settings file of `home`. Claude Code keeps it inside `CLAUDE_CONFIG_DIR`; for the
/// default home `~/.claude` run without that variable it is `~/.claude.json` beside it, so
/// that one is read when the home has none of its own.
fn config_file(home: &Path) -> Option<PathBuf> {
    let inside = home.join(CONFIG_FILE);
    if inside.is_file() {
        return Some(inside);
    }
    let beside = home
        .file_name()
        .filter(|name| *name == ".claude")
        .and(home.parent())
        .map(|parent| parent.join(CONFIG_FILE))?;
    beside.is_file().then_some(beside)
}

/// Reads the login `home` holds. A home with neither file reads as no login.
pub(crate) fn read(home: &Path) -> Result<Login, Error> {
    let mut login = Login::default();
    if let Some(path) = config_file(home) {
        let config: ConfigFile = read_json(&path)?;
        if let Some(account) = config.oauth_account {
            login.account_id = account.account_uuid.filter(|id| !id.is_empty());
            login.organization_id = account.organization_uuid.filter(|id| !id.is_empty());
            login.email = account.email_address.filter(|e| !e.is_empty());
        }
        login.config_file = Some(path);
    }
    let credentials = home.join(CREDENTIALS_FILE);
    if credentials.is_file() {
        let file: CredentialsFile = read_json(&credentials)?;
        if let Some(oauth) = file.claude_ai_oauth {
            login.has_credentials = true;
            login.subscription = oauth.subscription_type;
            login.expires_at = oauth
                .expires_at
                .and_then(|ms| Timestamp::from_millisecond(ms).ok());
        }
    }
    Ok(login)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::Parse {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home_with(config: Option<&str>, credentials: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some(text) = config {
            std::fs::write(dir.path().join(CONFIG_FILE), text).expect("write config");
        }
        if let Some(text) = credentials {
            std::fs::write(dir.path().join(CREDENTIALS_FILE), text).expect("write credentials");
        }
        dir
    }

    const CONFIG: &str = r#"{"hasCompletedOnboarding": true, "oauthAccount": {"accountUuid": "4f1c", "emailAddress": "ops@example.com", "organizationUuid": "9a2e", "organizationName": "Ops"}}"#;
    const CREDENTIALS: &str = r#"{"claudeAiOauth": {"accessToken": "sk-ant-oat01-SECRET", "refreshToken": "sk-ant-ort01-SECRET", "expiresAt": 1700000000000, "scopes": ["user:inference"], "subscriptionType": "max"}}"#;

    #[test]
    fn read_should_find_the_identity_and_expiry_without_the_tokens() {
        let home = home_with(Some(CONFIG), Some(CREDENTIALS));
        let login = read(home.path()).expect("readable");
        assert_eq!(login.account_id.as_deref(), Some("4f1c"));
        assert_eq!(login.organization_id.as_deref(), Some("9a2e"));
        assert_eq!(login.label(), Some("ops@example.com"));
        assert_eq!(login.subscription.as_deref(), Some("max"));
        assert!(login.has_credentials && login.is_present());
        assert!(login.expired(Timestamp::from_second(1_700_000_001).expect("ts")));
        assert!(!login.expired(Timestamp::from_second(1_699_999_999).expect("ts")));
        assert!(!format!("{login:?}").contains("SECRET"), "{login:?}");
    }

    #[test]
    fn read_should_say_no_login_for_an_empty_folder() {
        let home = home_with(None, None);
        let login = read(home.path()).expect("readable");
        assert!(!login.is_present() && !is_home(home.path()));
        assert_eq!(login.identity(), None);
    }

    #[test]
    fn read_should_name_the_file_that_is_not_json() {
        let home = home_with(Some("{not json"), None);
        let error = read(home.path()).expect_err("garbage");
        assert!(error.to_string().contains(".claude.json"), "{error}");
    }

    #[test]
    fn read_should_take_the_default_homes_settings_from_beside_it() {
        let user = tempfile::tempdir().expect("temp dir");
        let home = user.path().join(".claude");
        std::fs::create_dir(&home).expect("mkdir");
        std::fs::write(home.join(CREDENTIALS_FILE), CREDENTIALS).expect("write");
        std::fs::write(user.path().join(CONFIG_FILE), CONFIG).expect("write");
        let login = read(&home).expect("readable");
        assert_eq!(login.account_id.as_deref(), Some("4f1c"));
        assert_eq!(login.config_file, Some(user.path().join(CONFIG_FILE)));
    }

    #[test]
    fn two_homes_of_one_login_should_share_an_identity() {
        let a = home_with(Some(CONFIG), Some(CREDENTIALS));
        let b = home_with(Some(CONFIG), None);
        let c = home_with(
            Some(r#"{"oauthAccount": {"accountUuid": "77aa", "organizationUuid": "9a2e"}}"#),
            None,
        );
        let [a, b, c] = [a, b, c].map(|h| read(h.path()).expect("readable").identity());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
