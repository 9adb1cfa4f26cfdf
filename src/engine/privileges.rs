//! Application privileges (`/_security/privilege`) and the profile has-privileges check
//! (`/_security/profile/_has_privileges`), with Elasticsearch's validation and semantics.

use super::profiles::ProfileError;
use super::roles::find_role;
use super::{Caller, Engine};
use crate::auth::has_privileges::{PrivilegesToCheck, RolePermissions, INDEX_PRIVILEGE_NAMES};
use crate::auth::privileges::{action, check_cluster_privilege};
use crate::error::{Error, Missing, Violation};
use crate::model::{ApplicationPrivilegeRecord, RoleRecord};
use crate::store::StoreError;
use std::collections::BTreeMap;

/// Elasticsearch's `ApplicationPrivilege.validateApplicationName`: a prefix of at least three
/// ASCII letters or digits starting with a lowercase letter, optionally `-` or `_` and a suffix
/// that is a valid file name; with `allow_wildcard`, a trailing `*` (or `*` alone).
pub fn validate_application_name(application: &str, allow_wildcard: bool) -> Result<(), String> {
    if application.is_empty() {
        return Err("Application names cannot be blank".into());
    }
    let asterisk = application.find('*');
    if let Some(position) = asterisk {
        if !allow_wildcard {
            return Err(format!(
                "Application names may not contain '*' (found '{application}')"
            ));
        }
        if application == "*" {
            return Ok(());
        }
        if position != application.len() - 1 {
            return Err(format!(
                "Application name patterns only support trailing wildcards (found '{application}')"
            ));
        }
    }
    if application.chars().any(is_java_whitespace) {
        return Err(format!(
            "Application names may not contain whitespace (found '{application}')"
        ));
    }
    let (prefix, suffix) = match application.find(['_', '-']) {
        Some(split) => (&application[..split], Some(&application[split + 1..])),
        None => (application, None),
    };
    let prefix = prefix.strip_suffix('*').unwrap_or(prefix);
    let mut chars = prefix.chars();
    let prefix_valid =
        matches!(chars.next(), Some('a'..='z')) && chars.all(|c| c.is_ascii_alphanumeric());
    if !prefix_valid {
        return Err(format!(
            "An application name prefix must match the pattern ^[a-z][A-Za-z0-9]*$ (found '{prefix}')"
        ));
    }
    if prefix.len() < 3 && asterisk.is_none() {
        return Err(format!(
            "An application name prefix must be at least 3 characters long (found '{prefix}')"
        ));
    }
    if let Some(suffix) = suffix {
        let suffix = if allow_wildcard {
            suffix.strip_suffix('*').unwrap_or(suffix)
        } else {
            suffix
        };
        if suffix.chars().any(|c| INVALID_FILENAME_CHARS.contains(c)) {
            return Err(format!(
                "An application name suffix may not contain any of the characters '{INVALID_FILENAME_CHARS}' (found '{suffix}')"
            ));
        }
    }
    Ok(())
}

/// Elasticsearch's `Strings.INVALID_FILENAME_CHARS`, in the order its message lists them.
const INVALID_FILENAME_CHARS: &str = "\\/*?\"<>| ,";

/// Java's `\v` and `\h` classes: vertical and horizontal whitespace.
fn is_java_whitespace(c: char) -> bool {
    matches!(
        c,
        '\n' | '\u{0B}'
            | '\u{0C}'
            | '\r'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
            | ' '
            | '\t'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{180E}'
            | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// `^[a-z][a-zA-Z0-9_.-]*$`.
pub fn validate_privilege_name(name: &str) -> Result<(), String> {
    if crate::auth::has_privileges::is_application_privilege_name(name) {
        Ok(())
    } else {
        Err(format!(
            "Application privilege names must match the pattern ^[a-z][a-zA-Z0-9_.-]*$ (found '{name}')"
        ))
    }
}

/// `^\p{Graph}*$`: printable, visible ASCII only.
pub fn validate_privilege_or_action_name(name: &str) -> Result<(), String> {
    if name.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(format!(
            "Application privilege names and actions must match the pattern ^\\p{{Graph}}*$ (found '{name}')"
        ))
    }
}

/// The put-privileges request's validation, every message collected.
fn validate_put(privileges: &[ApplicationPrivilegeRecord]) -> Result<(), Error> {
    let mut violations = Vec::new();
    if privileges.is_empty() {
        violations.push(Violation::new(
            "privileges",
            "At least one application privilege must be provided",
        ));
    }
    for privilege in privileges {
        if let Err(message) = validate_application_name(&privilege.application, false) {
            violations.push(Violation::new("application", message));
        }
        if let Err(message) = validate_privilege_name(&privilege.name) {
            violations.push(Violation::new("name", message));
        }
        if privilege.actions.is_empty() {
            violations.push(Violation::new(
                "actions",
                "Application privileges must have at least one action",
            ));
        }
        for action in &privilege.actions {
            if !action.contains(['/', '*', ':']) {
                violations.push(Violation::new(
                    "actions",
                    format!("action [{action}] must contain one of [ '/' , '*' , ':' ]"),
                ));
            }
            if let Err(message) = validate_privilege_or_action_name(action) {
                violations.push(Violation::new("actions", message));
            }
        }
        if privilege.metadata.keys().any(|k| k.starts_with('_')) {
            violations.push(Violation::new(
                "metadata",
                format!(
                    "metadata keys may not start with [_] (in privilege {} {})",
                    privilege.application, privilege.name
                ),
            ));
        }
    }
    Error::check(violations)
}

/// The shape of a role's `applications` entries, as Elasticsearch's role parser checks it:
/// `application` a string, `privileges` and `resources` arrays of strings, all three present,
/// nothing else. Checked before the role's validation, as a parse error.
pub fn check_application_entries(role: &RoleRecord) -> Result<(), Error> {
    let failed = |detail: String| {
        Error::Parse(format!(
            "failed to parse application privileges for role [{}]. {detail}",
            role.name
        ))
    };
    for entry in &role.applications {
        for required in ["application", "privileges", "resources"] {
            let Some(value) = entry.get(required) else {
                return Err(failed(format!("missing required [{required}] field")));
            };
            let (well_typed, expected) = match required {
                "application" => (value.is_string(), "a string"),
                _ => (
                    value
                        .as_array()
                        .is_some_and(|items| items.iter().all(serde_json::Value::is_string)),
                    "an array of strings",
                ),
            };
            if !well_typed {
                return Err(failed(format!(
                    "expected field [{required}] value to be {expected}, but found [{}] instead",
                    crate::model::token_name(value)
                )));
            }
        }
        if let Some(unknown) = entry.as_object().and_then(|fields| {
            fields
                .keys()
                .find(|k| !matches!(k.as_str(), "application" | "privileges" | "resources"))
        }) {
            return Err(failed(format!("unexpected field [{unknown}]")));
        }
    }
    Ok(())
}

/// Validates a role's `applications` entries (`application`, `privileges`, `resources`,
/// already shaped by the front end).
pub fn validate_role_applications(role: &RoleRecord, violations: &mut Vec<Violation>) {
    for entry in &role.applications {
        if let Some(application) = entry.get("application").and_then(|v| v.as_str()) {
            if let Err(message) = validate_application_name(application, true) {
                violations.push(Violation::new("applications", message));
            }
        }
        for privilege in entry
            .get("privileges")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
        {
            if let Err(message) = validate_privilege_or_action_name(privilege) {
                violations.push(Violation::new("applications", message));
            }
        }
    }
}

/// The privileges a has-privileges request asks about, validated as Elasticsearch does.
fn validate_check(request: &PrivilegesToCheck, violations: &mut Vec<Violation>) {
    for entry in &request.application {
        if let Err(message) = validate_application_name(&entry.application, false) {
            violations.push(Violation::new("privileges.application", message));
        }
    }
    if request.is_empty() {
        violations.push(Violation::new(
            "privileges",
            "must specify at least one privilege",
        ));
    }
}

/// Unknown cluster and index privilege names are 400s, as in Elasticsearch's has-privileges.
fn check_privilege_names(request: &PrivilegesToCheck) -> Result<(), Error> {
    for privilege in &request.cluster {
        check_cluster_privilege(privilege).map_err(Error::IllegalArgument)?;
    }
    for entry in &request.index {
        for privilege in &entry.privileges {
            if crate::auth::has_privileges::index_privilege_actions(privilege).is_none() {
                return Err(Error::IllegalArgument(format!(
                    "unknown index privilege [{}]. a privilege must be either one of the predefined fixed indices privileges [{}] or a pattern over one of the available index actions",
                    privilege.to_ascii_lowercase(),
                    INDEX_PRIVILEGE_NAMES.join(",")
                )));
            }
        }
    }
    Ok(())
}

/// The answer to a profile has-privileges call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileHasPrivileges {
    /// The requested uids whose users hold every requested privilege, in request order.
    pub has_privilege_uids: Vec<String>,
    /// Uids that could not be checked, with why.
    pub errors: BTreeMap<String, ProfileError>,
}

/// The caller's own privilege check.
#[derive(Debug, Clone, PartialEq)]
pub struct UserHasPrivileges {
    /// The caller.
    pub username: String,
    /// What was granted.
    pub result: crate::auth::has_privileges::PrivilegeCheckResult,
}

/// Everything the caller's roles grant, merged (Elasticsearch's `GET /_security/user/_privileges`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPrivileges {
    /// Cluster privileges, sorted, without repeats.
    pub cluster: Vec<String>,
    /// `global.application.manage` application patterns, sorted.
    pub application_manage: Vec<String>,
    /// `global.profile.write` application patterns, sorted.
    pub profile_write: Vec<String>,
    /// Index entries, as the roles hold them.
    pub indices: Vec<serde_json::Value>,
    /// Application entries, as the roles hold them.
    pub applications: Vec<serde_json::Value>,
    /// Run-as targets, sorted.
    pub run_as: Vec<String>,
}

impl Engine {
    /// The definitions of the caller's roles that exist.
    async fn caller_role_definitions(&self, caller: &Caller) -> Result<Vec<RoleRecord>, Error> {
        let mut definitions = Vec::with_capacity(caller.roles.found.len());
        for name in &caller.roles.found {
            if let Some(role) = find_role(self.store(), name).await? {
                definitions.push(role.into_owned());
            }
        }
        Ok(definitions)
    }

    /// Which of `request`'s privileges the caller holds. Anyone may ask about themselves, and
    /// only about themselves.
    pub async fn user_has_privileges(
        &self,
        caller: &Caller,
        username: Option<&str>,
        request: &PrivilegesToCheck,
    ) -> Result<UserHasPrivileges, Error> {
        let mut violations = Vec::new();
        validate_check(request, &mut violations);
        Error::check(violations)?;
        if username.is_some_and(|name| name != caller.user.username) {
            return Err(Error::IllegalArgument(
                "users may only check the privileges of their own account".into(),
            ));
        }
        check_privilege_names(request)?;
        let stored = if request.application.is_empty() {
            Vec::new()
        } else {
            self.store().list_application_privileges().await?
        };
        let definitions = self.caller_role_definitions(caller).await?;
        Ok(UserHasPrivileges {
            username: caller.user.username.clone(),
            result: RolePermissions::of(&definitions).check(request, &stored),
        })
    }

    /// The union of what the caller's roles grant. Anyone may ask about themselves.
    pub async fn user_privileges(&self, caller: &Caller) -> Result<UserPrivileges, Error> {
        let definitions = self.caller_role_definitions(caller).await?;
        let mut privileges = UserPrivileges::default();
        for role in &definitions {
            privileges.cluster.extend(role.cluster.iter().cloned());
            privileges
                .application_manage
                .extend(role.application_manage_applications.iter().cloned());
            privileges
                .profile_write
                .extend(role.profile_write_applications.iter().cloned());
            for entry in &role.indices {
                if !privileges.indices.contains(entry) {
                    privileges.indices.push(entry.clone());
                }
            }
            for entry in &role.applications {
                if !privileges.applications.contains(entry) {
                    privileges.applications.push(entry.clone());
                }
            }
            privileges.run_as.extend(role.run_as.iter().cloned());
        }
        for list in [
            &mut privileges.cluster,
            &mut privileges.application_manage,
            &mut privileges.profile_write,
            &mut privileges.run_as,
        ] {
            list.sort();
            list.dedup();
        }
        Ok(privileges)
    }

    /// Refuses application-privilege management unless the caller holds `action` as a cluster
    /// privilege, or the `global.application.manage` privilege for every application named.
    fn authorize_application_privileges(
        &self,
        caller: &Caller,
        action: &str,
        applications: &[&str],
    ) -> Result<(), Error> {
        if caller.roles.allows(action)
            || (!applications.is_empty()
                && applications
                    .iter()
                    .all(|app| caller.roles.allows_application_manage(app)))
        {
            return Ok(());
        }
        self.authorize(caller, action)
    }

    /// Refuses listing the built-in privileges to callers without that action.
    pub fn authorize_builtin_privileges(&self, caller: &Caller) -> Result<(), Error> {
        self.authorize(caller, action::PRIVILEGE_BUILTIN_GET)
    }

    /// Creates or updates application privileges; per privilege, whether it was created.
    pub async fn put_application_privileges(
        &self,
        caller: &Caller,
        mut privileges: Vec<ApplicationPrivilegeRecord>,
    ) -> Result<Vec<(String, String, bool)>, Error> {
        for privilege in &mut privileges {
            // Elasticsearch keeps actions as a set, in the order first given.
            let mut seen = std::collections::HashSet::new();
            privilege
                .actions
                .retain(|action| seen.insert(action.clone()));
        }
        validate_put(&privileges)?;
        self.check_name_count("privileges", "application privileges", privileges.len())?;
        let applications: Vec<&str> = privileges.iter().map(|p| p.application.as_str()).collect();
        self.authorize_application_privileges(caller, action::PRIVILEGE_PUT, &applications)?;
        let names: Vec<(String, String)> = privileges
            .iter()
            .map(|p| (p.application.clone(), p.name.clone()))
            .collect();
        let created = self.store().put_application_privileges(privileges).await?;
        Ok(names
            .into_iter()
            .zip(created)
            .map(|((application, name), created)| (application, name, created))
            .collect())
    }

    /// Application privileges: all (no `applications`), those of the listed applications
    /// (trailing-`*` patterns allowed), or the named ones of those. Naming applications and
    /// finding nothing is [`Error::NoneFound`].
    pub async fn get_application_privileges(
        &self,
        caller: &Caller,
        applications: &[String],
        names: &[String],
    ) -> Result<Vec<ApplicationPrivilegeRecord>, Error> {
        for application in applications {
            validate_application_name(application, true)
                .map_err(|m| Error::validation("application", m))?;
        }
        self.check_name_count("application", "applications", applications.len())?;
        self.check_name_count("name", "privilege names", names.len())?;
        let named: Vec<&str> = applications.iter().map(String::as_str).collect();
        self.authorize_application_privileges(caller, action::PRIVILEGE_GET, &named)?;
        let found: Vec<ApplicationPrivilegeRecord> = self
            .store()
            .list_application_privileges()
            .await?
            .into_iter()
            .filter(|p| {
                (applications.is_empty()
                    || applications
                        .iter()
                        .any(|app| crate::auth::patterns::matches(app, &p.application)))
                    && (names.is_empty() || names.contains(&p.name))
            })
            .collect();
        if found.is_empty() && !applications.is_empty() {
            return Err(Error::NoneFound("no application privileges found".into()));
        }
        Ok(found)
    }

    /// Deletes the named privileges of `application`; per name, whether it existed. None of
    /// them existing is [`Missing::ApplicationPrivileges`] (a 404 with the same per-name body).
    pub async fn delete_application_privileges(
        &self,
        caller: &Caller,
        application: &str,
        names: &[String],
    ) -> Result<Vec<(String, bool)>, Error> {
        validate_application_name(application, false)
            .map_err(|m| Error::validation("application", m))?;
        self.check_name_count("name", "privilege names", names.len())?;
        self.authorize_application_privileges(caller, action::PRIVILEGE_DELETE, &[application])?;
        let found = self
            .store()
            .delete_application_privileges(application, names)
            .await?;
        if !found.iter().any(|existed| *existed) {
            return Err(Error::NothingFound(Missing::ApplicationPrivileges {
                application: application.to_owned(),
                names: names.to_vec(),
            }));
        }
        Ok(names.iter().cloned().zip(found).collect())
    }

    /// Which of `uids`' users hold every privilege in `request`, judged by the roles each
    /// profile recorded at its last activation (as Elasticsearch does). Disabled profiles are
    /// left out; unknown uids are errors.
    pub async fn profile_has_privileges(
        &self,
        caller: &Caller,
        uids: &[String],
        request: &PrivilegesToCheck,
    ) -> Result<ProfileHasPrivileges, Error> {
        let mut violations = Vec::new();
        if uids.is_empty() {
            violations.push(Violation::new(
                "uids",
                "profile uids list must not be empty",
            ));
        }
        validate_check(request, &mut violations);
        Error::check(violations)?;
        self.check_name_count("uids", "profile UIDs", uids.len())?;
        self.authorize(caller, action::PROFILE_HAS_PRIVILEGES)?;
        check_privilege_names(request)?;
        let mut answer = ProfileHasPrivileges::default();
        if !self.profile_index_exists().await? {
            return Ok(answer);
        }
        let stored = if request.application.is_empty() {
            Vec::new()
        } else {
            self.store().list_application_privileges().await?
        };
        let profiles = self.store().get_profiles(uids).await?;
        // Roles are shared by many profiles: each is read once per call, and each distinct set
        // of role names is judged once.
        let mut roles: BTreeMap<String, Option<RoleRecord>> = BTreeMap::new();
        let mut verdicts: std::collections::HashMap<Vec<String>, bool> =
            std::collections::HashMap::new();
        for (uid, slot) in uids.iter().zip(profiles) {
            let profile = match slot {
                Ok(Some(profile)) => profile,
                Ok(None) => {
                    answer.errors.insert(
                        uid.clone(),
                        ProfileError {
                            error_type: "resource_not_found_exception",
                            reason: "profile document not found".into(),
                        },
                    );
                    continue;
                }
                Err(StoreError::Unreadable(detail)) => {
                    tracing::error!(uid, %detail, "a stored profile cannot be read");
                    answer.errors.insert(
                        uid.clone(),
                        ProfileError {
                            error_type: "illegal_state_exception",
                            reason: crate::store::UNREADABLE_REASON.into(),
                        },
                    );
                    continue;
                }
                Err(unavailable) => return Err(unavailable.into()),
            };
            if !profile.doc.enabled {
                continue;
            }
            let mut role_names = profile.doc.user.roles.clone();
            role_names.sort();
            role_names.dedup();
            let granted = match verdicts.get(&role_names) {
                Some(granted) => *granted,
                None => {
                    for name in &role_names {
                        if !roles.contains_key(name) {
                            let role = find_role(self.store(), name).await?.map(|r| r.into_owned());
                            roles.insert(name.clone(), role);
                        }
                    }
                    let permissions = RolePermissions::of(
                        role_names
                            .iter()
                            .filter_map(|name| roles.get(name).and_then(Option::as_ref)),
                    );
                    let granted = permissions.check(request, &stored).has_all_requested;
                    verdicts.insert(role_names, granted);
                    granted
                }
            };
            if granted {
                answer.has_privilege_uids.push(uid.clone());
            }
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_names_follow_elasticsearch_rules() {
        assert!(validate_application_name("kibana-.kibana", false).is_ok());
        assert!(validate_application_name("myapp", false).is_ok());
        assert!(validate_application_name("app_a-b", false).is_ok());
        assert_eq!(
            validate_application_name("", false).unwrap_err(),
            "Application names cannot be blank"
        );
        assert_eq!(
            validate_application_name("000", false).unwrap_err(),
            "An application name prefix must match the pattern ^[a-z][A-Za-z0-9]*$ (found '000')"
        );
        assert_eq!(
            validate_application_name("ab", false).unwrap_err(),
            "An application name prefix must be at least 3 characters long (found 'ab')"
        );
        assert_eq!(
            validate_application_name("kibana-*", false).unwrap_err(),
            "Application names may not contain '*' (found 'kibana-*')"
        );
        assert!(validate_application_name("kibana-*", true).is_ok());
        assert!(validate_application_name("*", true).is_ok());
        assert!(validate_application_name("ki*", true).is_ok());
        assert_eq!(
            validate_application_name("k*a", true).unwrap_err(),
            "Application name patterns only support trailing wildcards (found 'k*a')"
        );
        assert_eq!(
            validate_application_name("%*", true).unwrap_err(),
            "An application name prefix must match the pattern ^[a-z][A-Za-z0-9]*$ (found '%')"
        );
        assert_eq!(
            validate_application_name("app-a|b", false).unwrap_err(),
            "An application name suffix may not contain any of the characters '\\/*?\"<>| ,' (found 'a|b')"
        );
        assert!(validate_application_name("my app", false).is_err());
    }

    #[test]
    fn privilege_names_and_actions_are_checked() {
        assert!(validate_privilege_name("space_read").is_ok());
        assert!(validate_privilege_name("Read").is_err());
        assert!(validate_privilege_or_action_name("data/read:user").is_ok());
        assert!(validate_privilege_or_action_name("in valid").is_err());
        let privilege = |actions: &[&str]| ApplicationPrivilegeRecord {
            application: "myapp".into(),
            name: "read".into(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
            metadata: Default::default(),
        };
        assert!(validate_put(&[privilege(&["data:read/*"])]).is_ok());
        let Err(Error::ActionValidation(violations)) =
            validate_put(&[privilege(&["plain", "bad one/x"])])
        else {
            panic!("invalid actions must be refused");
        };
        let messages: Vec<&str> = violations.iter().map(|v| v.message.as_str()).collect();
        assert!(messages.contains(&"action [plain] must contain one of [ '/' , '*' , ':' ]"));
        assert!(messages
            .iter()
            .any(|m| m.starts_with("Application privilege names and actions must match")));
        assert!(validate_put(&[privilege(&[])]).is_err());
        assert!(validate_put(&[]).is_err());
    }
}
