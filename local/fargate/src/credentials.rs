//! A task's AWS credentials, as ECS gives them: a session of the task role (the
//! definition's `taskRoleArn`, or RunTask's `overrides.taskRoleArn`), obtained by STS
//! AssumeRole with the runner's own credentials; none at all for a task without a
//! task role. A task never holds the runner's keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Mutex as AsyncMutex;

/// Variables through which an SDK finds credentials (and the instance metadata
/// switch). A task's environment holds none of the runner's: only its role's session
/// keys, or nothing, and the settings [`task_env`] puts in their place.
pub const CREDENTIAL_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
];

/// How long a role's session is used for new tasks before another is asked for.
/// Sessions last AWS's default hour (moto never expires them).
pub const SESSION_REUSE: Duration = Duration::from_secs(15 * 60);

/// The keys of one session of a role.
#[derive(Clone, PartialEq, Eq)]
pub struct Creds {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creds")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &"** redacted **")
            .finish()
    }
}

/// The task's AWS environment: the runner's (`base`: endpoint, region, log format,
/// PATH…) without any credential of the runner's, then the role session's keys when
/// the task has a role. Nothing else is left for an SDK to find credentials in: the
/// shared credentials and config files are empty (`/dev/null`, so a process task does
/// not read the runner's `~/.aws`) and the instance metadata service is off (Fargate
/// has none). The task definition's environment and the overrides come after this, as
/// ECS layers them.
pub fn task_env(base: &[(String, String)], credentials: Option<&Creds>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = base
        .iter()
        .filter(|(k, _)| !CREDENTIAL_VARIABLES.contains(&k.as_str()))
        .cloned()
        .collect();
    for (key, value) in [
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        env.push((key.into(), value.into()));
    }
    if let Some(creds) = credentials {
        env.push(("AWS_ACCESS_KEY_ID".into(), creds.access_key_id.clone()));
        env.push((
            "AWS_SECRET_ACCESS_KEY".into(),
            creds.secret_access_key.clone(),
        ));
        env.push(("AWS_SESSION_TOKEN".into(), creds.session_token.clone()));
    }
    env
}

/// The task's role: RunTask's `overrides.taskRoleArn`, else the definition's.
pub fn task_role<'a>(overridden: Option<&'a str>, definition: Option<&'a str>) -> Option<&'a str> {
    overridden
        .filter(|r| !r.is_empty())
        .or(definition.filter(|r| !r.is_empty()))
}

/// A RoleSessionName AWS accepts (2 to 64 of `[\w+=,.@-]`) for a task id, as ECS
/// names a task role's sessions.
pub fn session_name(task_id: &str) -> String {
    let mut name: String = task_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.len() < 2 {
        name = format!("local-fargate-{name}");
    }
    name
}

/// ECS's stopped reason for a task whose role cannot be assumed.
pub fn cannot_assume(role_arn: &str, error: &str) -> String {
    format!("ResourceInitializationError: unable to assume the task role {role_arn}: {error}")
}

/// One role's session, with when it was obtained; locked while it is asked for.
type Slot = AsyncMutex<Option<(Instant, Creds)>>;

/// Role sessions by role ARN, each reused for [`SESSION_REUSE`]. Tasks of one role
/// that start together wait for one AssumeRole; other roles do not wait for it.
#[derive(Debug)]
pub struct RoleSessions {
    reuse: Duration,
    sessions: Mutex<HashMap<String, Arc<Slot>>>,
}

impl Default for RoleSessions {
    fn default() -> Self {
        RoleSessions::new(SESSION_REUSE)
    }
}

impl RoleSessions {
    pub fn new(reuse: Duration) -> RoleSessions {
        RoleSessions {
            reuse,
            sessions: Mutex::default(),
        }
    }

    fn slot(&self, role_arn: &str) -> Arc<Slot> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .entry(role_arn.to_string())
            .or_default()
            .clone()
    }

    /// A session of the role: one obtained less than `reuse` ago, else a new one from
    /// `assume` (which is not called then). The error is `assume`'s.
    pub async fn get_with<F, Fut>(&self, role_arn: &str, assume: F) -> Result<Creds, String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Creds, String>>,
    {
        let slot = self.slot(role_arn);
        let mut session = slot.lock().await;
        if let Some((obtained, creds)) = session.as_ref()
            && obtained.elapsed() < self.reuse
        {
            return Ok(creds.clone());
        }
        let obtained = Instant::now();
        let creds = assume().await?;
        *session = Some((obtained, creds.clone()));
        Ok(creds)
    }

    /// A session of the role (see [`RoleSessions::get_with`]), from STS AssumeRole
    /// with the runner's credentials, named `session_name`.
    pub async fn get(
        &self,
        sts: &aws_sdk_sts::Client,
        role_arn: &str,
        session_name: &str,
    ) -> Result<Creds, String> {
        self.get_with(role_arn, || assume_role(sts, role_arn, session_name))
            .await
    }
}

/// STS AssumeRole (the default duration, AWS's one hour); the error in full.
async fn assume_role(
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    session_name: &str,
) -> Result<Creds, String> {
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .send()
        .await
        .map_err(|e| baton::error::display_chain(&e))?;
    let c = out
        .credentials()
        .ok_or("AssumeRole returned no credentials")?;
    if c.access_key_id().is_empty() || c.secret_access_key().is_empty() {
        return Err("AssumeRole returned empty credentials".into());
    }
    Ok(Creds {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: c.secret_access_key().to_string(),
        session_token: c.session_token().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::env;

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Vec<&'a str> {
        env.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn runner() -> Vec<(String, String)> {
        env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4999"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_SESSION_TOKEN", "runner-token"),
            ("AWS_PROFILE", "admin"),
            ("PATH", "/usr/bin"),
            ("BATON_LOG_FORMAT", "json"),
        ])
    }

    fn session() -> Creds {
        Creds {
            access_key_id: "ASIAROLE".into(),
            secret_access_key: "role-secret".into(),
            session_token: "role-token".into(),
        }
    }

    #[test]
    fn a_task_with_a_role_holds_its_session_keys_in_place_of_the_runners() {
        let env = task_env(&runner(), Some(&session()));
        assert_eq!(get(&env, "AWS_ACCESS_KEY_ID"), ["ASIAROLE"]);
        assert_eq!(get(&env, "AWS_SECRET_ACCESS_KEY"), ["role-secret"]);
        assert_eq!(get(&env, "AWS_SESSION_TOKEN"), ["role-token"]);
        assert!(get(&env, "AWS_PROFILE").is_empty());
        assert!(!env.iter().any(|(_, v)| v == "test" || v == "runner-token"));
    }

    #[test]
    fn a_task_without_a_role_holds_no_credentials() {
        let env = task_env(&runner(), None);
        for key in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
        ] {
            assert!(get(&env, key).is_empty(), "{key}");
        }
        // Nowhere else to find any: no credentials file, no instance metadata.
        assert_eq!(get(&env, "AWS_SHARED_CREDENTIALS_FILE"), ["/dev/null"]);
        assert_eq!(get(&env, "AWS_CONFIG_FILE"), ["/dev/null"]);
        assert_eq!(get(&env, "AWS_EC2_METADATA_DISABLED"), ["true"]);
    }

    #[test]
    fn the_endpoint_region_and_the_rest_are_kept() {
        for creds in [None, Some(session())] {
            let env = task_env(&runner(), creds.as_ref());
            assert_eq!(get(&env, "AWS_ENDPOINT_URL"), ["http://127.0.0.1:4999"]);
            assert_eq!(get(&env, "AWS_REGION"), ["us-east-1"]);
            assert_eq!(get(&env, "AWS_DEFAULT_REGION"), ["us-east-1"]);
            assert_eq!(get(&env, "PATH"), ["/usr/bin"]);
            assert_eq!(get(&env, "BATON_LOG_FORMAT"), ["json"]);
        }
    }

    #[test]
    fn the_override_role_wins_over_the_definitions() {
        assert_eq!(task_role(Some("o"), Some("d")), Some("o"));
        assert_eq!(task_role(None, Some("d")), Some("d"));
        assert_eq!(task_role(Some(""), Some("d")), Some("d"));
        assert_eq!(task_role(None, Some("")), None);
        assert_eq!(task_role(None, None), None);
    }

    #[test]
    fn session_names_are_valid() {
        let valid = |name: &str| {
            (2..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        };
        for id in [
            "0123456789abcdef0123456789abcdef",
            "a",
            "",
            "with/slash and space:colon",
            &"x".repeat(100),
            "é-unicode",
        ] {
            let name = session_name(id);
            assert!(valid(&name), "{id:?} -> {name:?}");
        }
        assert_eq!(
            session_name("0123456789abcdef0123456789abcdef"),
            "0123456789abcdef0123456789abcdef"
        );
    }

    #[tokio::test]
    async fn sessions_are_reused_per_role_then_refreshed() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = AtomicUsize::new(0);
        let assume = |key: &'static str| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(Creds {
                    access_key_id: key.into(),
                    ..session()
                })
            }
        };
        let sessions = RoleSessions::new(Duration::from_secs(900));
        let a1 = sessions.get_with("role-a", || assume("A1")).await.unwrap();
        let a2 = sessions.get_with("role-a", || assume("A2")).await.unwrap();
        let b1 = sessions.get_with("role-b", || assume("B1")).await.unwrap();
        assert_eq!(
            (a1.access_key_id.as_str(), a2.access_key_id.as_str()),
            ("A1", "A1")
        );
        assert_eq!(b1.access_key_id, "B1");
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // Past the reuse time, a new session.
        let sessions = RoleSessions::new(Duration::ZERO);
        sessions.get_with("role-a", || assume("A1")).await.unwrap();
        let again = sessions.get_with("role-a", || assume("A3")).await.unwrap();
        assert_eq!(again.access_key_id, "A3");

        // A failure is not kept: the next task of the role asks again.
        let sessions = RoleSessions::new(Duration::from_secs(900));
        let failed = sessions
            .get_with("role-a", || async { Err("AccessDenied".to_string()) })
            .await;
        assert_eq!(failed, Err("AccessDenied".to_string()));
        let later = sessions.get_with("role-a", || assume("A4")).await.unwrap();
        assert_eq!(later.access_key_id, "A4");
    }

    #[test]
    fn the_secret_is_not_in_debug_output() {
        let shown = format!("{:?}", session());
        assert!(shown.contains("ASIAROLE"));
        assert!(!shown.contains("role-secret") && !shown.contains("role-token"));
    }

    #[test]
    fn the_stopped_reason_names_the_role_and_the_error() {
        assert_eq!(
            cannot_assume("arn:aws:iam::123456789012:role/r", "AccessDenied: no"),
            "ResourceInitializationError: unable to assume the task role arn:aws:iam::123456789012:role/r: AccessDenied: no"
        );
    }
}
