//! Authorization as Elasticsearch does it: roles hold cluster privileges, a privilege is a set of
//! action-name patterns, and an action is allowed when any of the caller's privileges matches it.

use crate::model::RoleRecord;

/// Transport action names, which privileges are matched against.
pub mod action {
    /// Activate a profile.
    pub const PROFILE_ACTIVATE: &str = "cluster:admin/xpack/security/profile/activate";
    /// Get profiles.
    pub const PROFILE_GET: &str = "cluster:admin/xpack/security/profile/get";
    /// Update profile labels and data.
    pub const PROFILE_PUT_DATA: &str = "cluster:admin/xpack/security/profile/put/data";
    /// Enable or disable a profile.
    pub const PROFILE_SET_ENABLED: &str = "cluster:admin/xpack/security/profile/set_enabled";
    /// Suggest profiles.
    pub const PROFILE_SUGGEST: &str = "cluster:admin/xpack/security/profile/suggest";
    /// Create or update a user.
    pub const USER_PUT: &str = "cluster:admin/xpack/security/user/put";
    /// Get users.
    pub const USER_GET: &str = "cluster:admin/xpack/security/user/get";
    /// Delete a user.
    pub const USER_DELETE: &str = "cluster:admin/xpack/security/user/delete";
    /// Change a user's password.
    pub const USER_CHANGE_PASSWORD: &str = "cluster:admin/xpack/security/user/change_password";
    /// Enable or disable a user.
    pub const USER_SET_ENABLED: &str = "cluster:admin/xpack/security/user/set_enabled";
    /// Create or update a role.
    pub const ROLE_PUT: &str = "cluster:admin/xpack/security/role/put";
    /// Get roles.
    pub const ROLE_GET: &str = "cluster:admin/xpack/security/role/get";
    /// Delete a role.
    pub const ROLE_DELETE: &str = "cluster:admin/xpack/security/role/delete";
    /// Create a token.
    pub const TOKEN_CREATE: &str = "cluster:admin/xpack/security/token/create";
    /// Refresh a token.
    pub const TOKEN_REFRESH: &str = "cluster:admin/xpack/security/token/refresh";
    /// Invalidate tokens.
    pub const TOKEN_INVALIDATE: &str = "cluster:admin/xpack/security/token/invalidate";
    /// Which profiles' users hold given privileges.
    pub const PROFILE_HAS_PRIVILEGES: &str = "cluster:admin/xpack/security/profile/has_privileges";
    /// Create or update application privileges.
    pub const PRIVILEGE_PUT: &str = "cluster:admin/xpack/security/privilege/put";
    /// Get application privileges.
    pub const PRIVILEGE_GET: &str = "cluster:admin/xpack/security/privilege/get";
    /// Delete application privileges.
    pub const PRIVILEGE_DELETE: &str = "cluster:admin/xpack/security/privilege/delete";
    /// List the built-in cluster and index privileges.
    pub const PRIVILEGE_BUILTIN_GET: &str = "cluster:admin/xpack/security/privilege/builtin/get";
}

/// Every predefined cluster privilege name Elasticsearch 8.x knows, least to most privileged as
/// its resolver lists them. Put-role accepts these (and `cluster:` patterns).
pub const CLUSTER_PRIVILEGE_NAMES: &[&str] = &[
    "none",
    "cancel_task",
    "create_snapshot",
    "cross_cluster_replication",
    "cross_cluster_search",
    "delegate_pki",
    "grant_api_key",
    "manage_autoscaling",
    "manage_behavioral_analytics",
    "manage_ccr",
    "manage_data_frame_transforms",
    "manage_data_stream_global_retention",
    "manage_enrich",
    "manage_ilm",
    "manage_index_templates",
    "manage_inference",
    "manage_ingest_pipelines",
    "manage_logstash_pipelines",
    "manage_ml",
    "manage_oidc",
    "manage_own_api_key",
    "manage_pipeline",
    "manage_rollup",
    "manage_saml",
    "manage_search_application",
    "manage_search_query_rules",
    "manage_search_synonyms",
    "manage_service_account",
    "manage_slm",
    "manage_token",
    "manage_transform",
    "manage_user_profile",
    "manage_watcher",
    "monitor_data_frame_transforms",
    "monitor_data_stream_global_retention",
    "monitor_enrich",
    "monitor_inference",
    "monitor_ml",
    "monitor_rollup",
    "monitor_snapshot",
    "monitor_text_structure",
    "monitor_transform",
    "monitor_watcher",
    "post_behavioral_analytics_event",
    "read_ccr",
    "read_connector_secrets",
    "read_fleet_secrets",
    "read_ilm",
    "read_pipeline",
    "read_security",
    "read_slm",
    "transport_client",
    "write_connector_secrets",
    "write_fleet_secrets",
    "manage_api_key",
    "monitor",
    "manage_security",
    "manage",
    "all",
];

/// The action patterns a named privilege grants, and those it carves out again. Only the
/// privileges that can grant this service's actions need real patterns; every other name grants
/// actions this service does not have.
fn privilege_patterns(name: &str) -> (&'static [&'static str], &'static [&'static str]) {
    const SECURITY: &str = "cluster:admin/xpack/security/*";
    match name {
        "all" => (&["cluster:*"], &[]),
        "manage" => (&["cluster:*"], &[SECURITY]),
        "manage_security" => (&[SECURITY], &[]),
        "manage_user_profile" => (&["cluster:admin/xpack/security/profile/*"], &[]),
        "manage_token" => (&["cluster:admin/xpack/security/token/*"], &[]),
        "read_security" => (
            &[
                "cluster:admin/xpack/security/*/get",
                "cluster:admin/xpack/security/*/query",
                "cluster:admin/xpack/security/*/has_privileges*",
                "cluster:admin/xpack/security/profile/suggest",
            ],
            &[],
        ),
        "monitor" => (&["cluster:monitor/*"], &[]),
        _ => (&[], &[]),
    }
}

/// The action patterns a named cluster privilege grants and carves out, or `None` when
/// Elasticsearch has no privilege of that name. Names whose actions this service does not model
/// have no patterns.
pub fn cluster_privilege_actions(
    name: &str,
) -> Option<(&'static [&'static str], &'static [&'static str])> {
    CLUSTER_PRIVILEGE_NAMES
        .contains(&name)
        .then(|| privilege_patterns(name))
}

/// A cluster privilege a role or a check may name: a predefined name (any case) or an action
/// pattern; otherwise Elasticsearch's message for it.
pub fn check_cluster_privilege(privilege: &str) -> Result<(), String> {
    let lowered = privilege.to_ascii_lowercase();
    if is_action_pattern(&lowered) || CLUSTER_PRIVILEGE_NAMES.contains(&lowered.as_str()) {
        return Ok(());
    }
    Err(format!(
        "unknown cluster privilege [{lowered}]. a privilege must be either one of the predefined cluster privilege names [{}] or a pattern over one of the available cluster actions",
        CLUSTER_PRIVILEGE_NAMES.join(",")
    ))
}

/// Whether one cluster privilege entry (a name or a `cluster:` action pattern) grants `action`.
pub fn privilege_grants(privilege: &str, action: &str) -> bool {
    use super::patterns::{matches, matches_prefix};
    if is_action_pattern(privilege) {
        // Elasticsearch treats a bare action name as the pattern `<name>*`.
        return matches_prefix(privilege, action);
    }
    // Checked on every request: no allocation unless the role spelled the name in capitals.
    let lowered: std::borrow::Cow<'_, str> = if privilege.bytes().any(|b| b.is_ascii_uppercase()) {
        privilege.to_ascii_lowercase().into()
    } else {
        privilege.into()
    };
    let (grants, excludes) = privilege_patterns(&lowered);
    grants.iter().any(|p| matches(p, action)) && !excludes.iter().any(|p| matches(p, action))
}

/// Whether a cluster entry is an action pattern rather than a privilege name.
pub fn is_action_pattern(privilege: &str) -> bool {
    privilege.starts_with("cluster:")
        || privilege.starts_with("indices:admin/template/")
        || privilege.starts_with("indices:admin/index_template/")
}

/// The named privileges that would grant `action`, in the order Elasticsearch's denial message
/// lists them (fewest implied privileges first, then by name).
pub fn privileges_granting(action: &str) -> Vec<&'static str> {
    const BY_ACCESS_LEVEL: &[&str] = &[
        "manage_token",
        "manage_user_profile",
        "read_security",
        "monitor",
        "manage_security",
        "manage",
        "all",
    ];
    BY_ACCESS_LEVEL
        .iter()
        .copied()
        .filter(|name| privilege_grants(name, action))
        .collect()
}

/// The built-in roles. Their definitions are fixed; they cannot be written or deleted.
pub fn builtin_role(name: &str) -> Option<RoleRecord> {
    builtin_role_ref(name).cloned()
}

/// A built-in role's definition, built once: resolving the caller's roles on every request
/// reads these without copying them.
pub fn builtin_role_ref(name: &str) -> Option<&'static RoleRecord> {
    static ROLES: std::sync::LazyLock<Vec<RoleRecord>> = std::sync::LazyLock::new(|| {
        BUILTIN_ROLE_NAMES
            .iter()
            .filter_map(|name| define_builtin_role(name))
            .collect()
    });
    ROLES.iter().find(|role| role.name == name)
}

fn define_builtin_role(name: &str) -> Option<RoleRecord> {
    let reserved_metadata = || {
        let mut m = serde_json::Map::new();
        m.insert("_reserved".into(), serde_json::Value::Bool(true));
        m
    };
    let role = |cluster: &[&str], profile_write: &[&str]| RoleRecord {
        name: name.to_owned(),
        cluster: cluster.iter().map(|s| s.to_string()).collect(),
        profile_write_applications: profile_write.iter().map(|s| s.to_string()).collect(),
        metadata: reserved_metadata(),
        ..RoleRecord::default()
    };
    Some(match name {
        "superuser" => RoleRecord {
            run_as: vec!["*".into()],
            indices: vec![serde_json::json!({
                "names": ["*"], "privileges": ["all"], "allow_restricted_indices": false
            })],
            applications: vec![serde_json::json!({
                "application": "*", "privileges": ["*"], "resources": ["*"]
            })],
            ..role(&["all"], &[])
        },
        "kibana_system" => RoleRecord {
            // Kibana registers its own application privileges at start.
            application_manage_applications: vec!["kibana-*".into()],
            ..role(
                &[
                    "monitor",
                    "manage_index_templates",
                    "manage_token",
                    "cluster:admin/xpack/security/profile/get",
                    "cluster:admin/xpack/security/profile/activate",
                    "cluster:admin/xpack/security/profile/suggest",
                    "cluster:admin/xpack/security/profile/has_privileges",
                    "cluster:admin/xpack/security/privilege/builtin/get",
                ],
                &["kibana*"],
            )
        },
        // Kibana's feature privileges on every space, as Elasticsearch's reserved roles grant.
        "viewer" => RoleRecord {
            applications: vec![serde_json::json!({
                "application": "kibana-.kibana", "privileges": ["read"], "resources": ["*"]
            })],
            ..role(&[], &[])
        },
        "editor" | "kibana_admin" => RoleRecord {
            applications: vec![serde_json::json!({
                "application": "kibana-.kibana", "privileges": ["all"], "resources": ["*"]
            })],
            ..role(&[], &[])
        },
        "monitoring_user" => role(&["cluster:monitor/main", "cluster:monitor/xpack/info"], &[]),
        "remote_monitoring_collector" | "logstash_system" | "beats_system" | "apm_system" => {
            role(&["monitor"], &[])
        }
        _ => return None,
    })
}

/// Names of the built-in roles, sorted.
pub const BUILTIN_ROLE_NAMES: &[&str] = &[
    "apm_system",
    "beats_system",
    "editor",
    "kibana_admin",
    "kibana_system",
    "logstash_system",
    "monitoring_user",
    "remote_monitoring_collector",
    "superuser",
    "viewer",
];

/// A caller's roles, resolved to their definitions.
#[derive(Debug, Clone, Default)]
pub struct EffectiveRoles {
    /// Role names that resolved, sorted.
    pub found: Vec<String>,
    /// Assigned role names that do not exist.
    pub missing: Vec<String>,
    /// The union of the found roles' cluster privileges.
    pub cluster: Vec<String>,
    /// The union of the found roles' profile-write application patterns.
    pub profile_write_applications: Vec<String>,
    /// The union of the found roles' `global.application.manage` application patterns.
    pub application_manage: Vec<String>,
}

impl EffectiveRoles {
    /// Folds role definitions into one permission set.
    pub fn from_roles(assigned: &[String], definitions: Vec<Option<RoleRecord>>) -> Self {
        let mut roles = EffectiveRoles::default();
        for (name, definition) in assigned.iter().zip(&definitions) {
            roles.add(name, definition.as_ref());
        }
        roles.finish()
    }

    /// Adds one assigned role, with its definition if it exists.
    pub fn add(&mut self, name: &str, definition: Option<&RoleRecord>) {
        match definition {
            Some(role) => {
                self.found.push(name.to_owned());
                self.cluster.extend(role.cluster.iter().cloned());
                self.profile_write_applications
                    .extend(role.profile_write_applications.iter().cloned());
                self.application_manage
                    .extend(role.application_manage_applications.iter().cloned());
            }
            None => self.missing.push(name.to_owned()),
        }
    }

    /// Done adding: `found` sorted and without repeats.
    pub fn finish(mut self) -> Self {
        self.found.sort();
        self.found.dedup();
        self
    }

    /// Whether these roles allow `action`.
    pub fn allows(&self, action: &str) -> bool {
        self.cluster.iter().any(|p| privilege_grants(p, action))
    }

    /// Whether the `global.profile.write` privilege covers every application name.
    pub fn allows_profile_write(&self, applications: &[String]) -> bool {
        !applications.is_empty()
            && applications.iter().all(|name| {
                self.profile_write_applications
                    .iter()
                    .any(|pattern| super::patterns::matches(pattern, name))
            })
    }

    /// Whether the `global.application.manage` privilege covers `application`.
    pub fn allows_application_manage(&self, application: &str) -> bool {
        self.application_manage
            .iter()
            .any(|pattern| super::patterns::matches(pattern, application))
    }

    /// Elasticsearch's 403 reason for `username` attempting `action`.
    pub fn denial_message(&self, username: &str, action: &str) -> String {
        let mut message = format!(
            "action [{action}] is unauthorized for user [{username}] with effective roles [{}]",
            self.found.join(",")
        );
        if !self.missing.is_empty() {
            message.push_str(&format!(
                " (assigned roles [{}] were not found)",
                self.missing.join(",")
            ));
        }
        let granting = privileges_granting(action);
        if !granting.is_empty() {
            message.push_str(&format!(
                ", this action is granted by the cluster privileges [{}]",
                granting.join(",")
            ));
        }
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_grant_the_profile_actions_as_elasticsearch_documents() {
        let cases = [
            ("manage_user_profile", action::PROFILE_ACTIVATE, true),
            ("manage_user_profile", action::PROFILE_GET, true),
            ("manage_security", action::PROFILE_ACTIVATE, true),
            ("all", action::PROFILE_ACTIVATE, true),
            ("manage", action::PROFILE_ACTIVATE, false),
            ("read_security", action::PROFILE_GET, true),
            ("read_security", action::PROFILE_ACTIVATE, false),
            ("read_security", action::USER_GET, true),
            ("read_security", action::USER_PUT, false),
            ("monitor", action::PROFILE_GET, false),
            (
                "cluster:admin/xpack/security/profile/get",
                action::PROFILE_GET,
                true,
            ),
            (
                "cluster:admin/xpack/security/profile/*",
                action::PROFILE_ACTIVATE,
                true,
            ),
        ];
        for (privilege, action, expected) in cases {
            assert_eq!(
                privilege_grants(privilege, action),
                expected,
                "{privilege} on {action}"
            );
        }
    }

    #[test]
    fn the_denial_message_lists_granting_privileges_least_first() {
        let roles = EffectiveRoles::from_roles(
            &["viewer".into(), "ghost".into()],
            vec![builtin_role("viewer"), None],
        );
        assert!(!roles.allows(action::PROFILE_GET));
        assert_eq!(
            roles.denial_message("joe", action::PROFILE_GET),
            "action [cluster:admin/xpack/security/profile/get] is unauthorized for user [joe] with effective roles [viewer] (assigned roles [ghost] were not found), this action is granted by the cluster privileges [manage_user_profile,read_security,manage_security,all]"
        );
    }

    #[test]
    fn kibana_system_may_activate_but_not_manage_users() {
        let roles = EffectiveRoles::from_roles(
            &["kibana_system".into()],
            vec![builtin_role("kibana_system")],
        );
        assert!(roles.allows(action::PROFILE_ACTIVATE));
        assert!(!roles.allows(action::USER_PUT));
    }
}
