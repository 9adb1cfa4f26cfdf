//! Privilege checks as Elasticsearch's has-privileges APIs answer them: for a set of role
//! definitions, which requested cluster, index and application privileges they grant.
//!
//! Elasticsearch compares automata; here every privilege is a list of action patterns and
//! "grants" means each requested pattern is covered by a granted one
//! ([`patterns::covers`]).

use super::patterns::{any_covers, covers, matches};
use super::privileges::{cluster_privilege_actions, is_action_pattern};
use crate::model::{ApplicationPrivilegeRecord, RoleRecord};
use serde_json::Value;

/// One requested index entry.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexCheck {
    /// Index names or patterns.
    pub names: Vec<String>,
    /// Index privilege names or `indices:` action patterns.
    pub privileges: Vec<String>,
    /// Whether patterns may cover restricted (`.security*`) indices.
    pub allow_restricted_indices: bool,
}

/// One requested application entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationCheck {
    /// The application (no wildcards).
    pub application: String,
    /// Privilege names (resolved through the stored definitions) or action patterns.
    pub privileges: Vec<String>,
    /// Resource names or patterns.
    pub resources: Vec<String>,
}

/// What a has-privileges call asks about.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrivilegesToCheck {
    /// Cluster privilege names or action patterns.
    pub cluster: Vec<String>,
    /// Index entries.
    pub index: Vec<IndexCheck>,
    /// Application entries.
    pub application: Vec<ApplicationCheck>,
}

impl PrivilegesToCheck {
    /// Whether nothing at all is asked.
    pub fn is_empty(&self) -> bool {
        self.cluster.is_empty() && self.index.is_empty() && self.application.is_empty()
    }
}

/// Each privilege asked about and whether it is granted, in the request's order.
pub type Granted = Vec<(String, bool)>;

/// Per resource (an index, or an application's resource), its privileges.
pub type GrantedOn = Vec<(String, Granted)>;

/// The answer, in the request's order (Elasticsearch sorts keys in its JSON; the renderer does).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrivilegeCheckResult {
    /// Whether every requested privilege is granted.
    pub has_all_requested: bool,
    /// Each cluster privilege and whether it is granted.
    pub cluster: Granted,
    /// Per index: each privilege and whether it is granted.
    pub index: GrantedOn,
    /// Per application, per resource: each privilege and whether it is granted.
    pub application: Vec<(String, GrantedOn)>,
}

/// An index entry of a role, parsed from its stored JSON.
struct IndexGrant {
    names: Vec<String>,
    privileges: Vec<String>,
}

/// An application entry of a role, parsed from its stored JSON.
struct ApplicationGrant {
    application: String,
    privileges: Vec<String>,
    resources: Vec<String>,
}

/// The permissions of a set of roles.
pub struct RolePermissions {
    cluster: Vec<String>,
    indices: Vec<IndexGrant>,
    applications: Vec<ApplicationGrant>,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

impl RolePermissions {
    /// The union of `roles`' permissions.
    pub fn of<'a>(roles: impl IntoIterator<Item = &'a RoleRecord>) -> Self {
        let mut permissions = Self {
            cluster: Vec::new(),
            indices: Vec::new(),
            applications: Vec::new(),
        };
        for role in roles {
            permissions.cluster.extend(role.cluster.iter().cloned());
            for entry in &role.indices {
                permissions.indices.push(IndexGrant {
                    names: strings(entry.get("names")),
                    privileges: strings(entry.get("privileges")),
                });
            }
            for entry in &role.applications {
                permissions.applications.push(ApplicationGrant {
                    application: entry
                        .get("application")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    privileges: strings(entry.get("privileges")),
                    resources: strings(entry.get("resources")),
                });
            }
        }
        permissions
    }

    /// Answers `request` with `stored` as the application privilege definitions.
    pub fn check(
        &self,
        request: &PrivilegesToCheck,
        stored: &[ApplicationPrivilegeRecord],
    ) -> PrivilegeCheckResult {
        let mut all = true;
        let cluster = request
            .cluster
            .iter()
            .map(|privilege| {
                let granted = self.grants_cluster(privilege);
                all &= granted;
                (privilege.clone(), granted)
            })
            .collect();
        let mut index: GrantedOn = Vec::new();
        for entry in &request.index {
            for name in &entry.names {
                let granted_actions = self.index_actions_covering(name);
                let privileges = keyed(&mut index, name);
                for privilege in &entry.privileges {
                    let granted = index_privilege_actions(privilege).is_some_and(|wanted| {
                        !wanted.is_empty() && wanted.iter().all(|w| any_covers(&granted_actions, w))
                    });
                    all &= granted;
                    *keyed(privileges, privilege) = granted;
                }
            }
        }
        let mut application: Vec<(String, GrantedOn)> = Vec::new();
        for entry in &request.application {
            let resources = keyed(&mut application, &entry.application);
            for resource in &entry.resources {
                let privileges = keyed(resources, resource);
                for privilege in &entry.privileges {
                    let granted = self.grants_application(
                        &entry.application,
                        std::slice::from_ref(privilege),
                        resource,
                        stored,
                    );
                    all &= granted;
                    *keyed(privileges, privilege) = granted;
                }
            }
        }
        PrivilegeCheckResult {
            has_all_requested: all,
            cluster,
            index,
            application,
        }
    }

    /// Whether the roles' cluster privileges imply `requested` (a name or an action pattern).
    fn grants_cluster(&self, requested: &str) -> bool {
        let requested = requested.to_ascii_lowercase();
        let wanted = if is_action_pattern(&requested) {
            (vec![requested.clone()], Vec::new())
        } else {
            match cluster_privilege_actions(&requested) {
                Some((include, exclude)) if !include.is_empty() => (
                    include.iter().map(|s| s.to_string()).collect(),
                    exclude.iter().map(|s| s.to_string()).collect(),
                ),
                // A name whose actions this service does not model is granted by itself (or
                // by `all`) only.
                _ => {
                    return self
                        .cluster
                        .iter()
                        .any(|g| g.eq_ignore_ascii_case(&requested) || g == "all")
                }
            }
        };
        let (wanted_include, wanted_exclude) = wanted;
        self.cluster.iter().any(|granted| {
            let granted = granted.to_ascii_lowercase();
            if granted == requested {
                return true;
            }
            let (include, exclude): (Vec<String>, Vec<String>) = if is_action_pattern(&granted) {
                // A bare action name grants its sub-actions too, as in authorization.
                let pattern = if granted.ends_with('*') {
                    granted.clone()
                } else {
                    format!("{granted}*")
                };
                (vec![pattern], Vec::new())
            } else {
                match cluster_privilege_actions(&granted) {
                    Some((include, exclude)) => (
                        include.iter().map(|s| s.to_string()).collect(),
                        exclude.iter().map(|s| s.to_string()).collect(),
                    ),
                    None => return false,
                }
            };
            wanted_include.iter().all(|w| {
                any_covers(&include, w)
                    // A carved-out part must not reach into what is asked for, unless the
                    // request carves it out too.
                    && exclude.iter().all(|x| {
                        (!covers(x, w) && !covers(w, x)) || any_covers(&wanted_exclude, x)
                    })
            })
        })
    }

    /// The action patterns the roles grant on `index` (entries whose names cover it).
    fn index_actions_covering(&self, index: &str) -> Vec<String> {
        let mut actions = Vec::new();
        for grant in &self.indices {
            if any_covers(&grant.names, index) {
                for privilege in &grant.privileges {
                    if let Some(patterns) = index_privilege_actions(privilege) {
                        actions.extend(patterns);
                    }
                }
            }
        }
        actions
    }

    /// Elasticsearch's `ApplicationPermission.grants`: one granted entry (for an application
    /// matching `application`, with privileges resolved through `stored`) whose actions cover
    /// the requested ones and whose resources cover `resource`.
    fn grants_application(
        &self,
        application: &str,
        requested: &[String],
        resource: &str,
        stored: &[ApplicationPrivilegeRecord],
    ) -> bool {
        let wanted = resolve_application_privilege(application, requested, stored);
        self.applications.iter().any(|grant| {
            if !matches(&grant.application, application) {
                return false;
            }
            if !any_covers(&grant.resources, resource) {
                return false;
            }
            if grant.privileges.is_empty() {
                return false;
            }
            // The same privilege names with the same (even empty) actions: granted as such.
            let mut granted_names = grant.privileges.clone();
            granted_names.sort();
            granted_names.dedup();
            let mut wanted_names = requested.to_vec();
            wanted_names.sort();
            wanted_names.dedup();
            let granted = resolve_application_privilege(application, &grant.privileges, stored);
            if granted_names == wanted_names && granted == wanted {
                return true;
            }
            if granted.iter().any(|g| g == "*") {
                return true;
            }
            !granted.is_empty()
                && !wanted.is_empty()
                && wanted.iter().all(|w| any_covers(&granted, w))
        })
    }
}

/// The value under `key` in an ordered association list, added (default) on first use: the
/// answer lists keys in the order the request first names them, repeats merged.
fn keyed<'a, T: Default>(list: &'a mut Vec<(String, T)>, key: &str) -> &'a mut T {
    let slot = match list.iter().position(|(k, _)| k == key) {
        Some(slot) => slot,
        None => {
            list.push((key.to_owned(), T::default()));
            list.len() - 1
        }
    };
    &mut list[slot].1
}

/// A privilege name is a lowercase identifier; anything else (holding `/`, `:` or `*`) is an
/// action pattern.
pub fn is_application_privilege_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The action patterns `names` stand for in `application`: stored privilege names resolve to
/// their actions (unknown names to none), anything else is an action pattern itself. Sorted.
pub fn resolve_application_privilege(
    application: &str,
    names: &[String],
    stored: &[ApplicationPrivilegeRecord],
) -> Vec<String> {
    let mut actions = Vec::new();
    for name in names {
        if is_application_privilege_name(name) {
            if let Some(definition) = stored
                .iter()
                .find(|p| p.application == application && p.name == *name)
            {
                actions.extend(definition.actions.iter().cloned());
            }
        } else {
            actions.push(name.clone());
        }
    }
    actions.sort();
    actions.dedup();
    actions
}

/// Elasticsearch's named index privileges, least to most privileged (the order its messages
/// list them in).
pub const INDEX_PRIVILEGE_NAMES: &[&str] = &[
    "none",
    "auto_configure",
    "create",
    "create_doc",
    "create_index",
    "cross_cluster_replication",
    "cross_cluster_replication_internal",
    "delete",
    "delete_index",
    "index",
    "maintenance",
    "manage",
    "manage_data_stream_lifecycle",
    "manage_follow_index",
    "manage_ilm",
    "manage_leader_index",
    "monitor",
    "read",
    "read_cross_cluster",
    "view_index_metadata",
    "write",
    "all",
];

/// The action patterns of an index privilege (a name, or itself when it is an `indices:`
/// pattern); `None` for a name Elasticsearch does not define.
pub fn index_privilege_actions(privilege: &str) -> Option<Vec<String>> {
    let lowered = privilege.to_ascii_lowercase();
    if lowered.contains(':') || lowered.contains('*') || lowered.contains('/') {
        return Some(vec![lowered]);
    }
    let patterns: &[&str] = match lowered.as_str() {
        "none" => &[],
        "all" => &["indices:*", "internal:transport/proxy/indices:*"],
        "manage" => &[
            "indices:monitor/*",
            "indices:admin/*",
            "indices:data/read/field_caps*",
        ],
        "monitor" => &["indices:monitor/*", "indices:admin/data_stream/get"],
        "read" => &["indices:data/read/*", "indices:admin/resolve/index"],
        "read_cross_cluster" => &["internal:transport/proxy/indices:data/read/*"],
        "write" => &[
            "indices:data/write/*",
            "indices:admin/mapping/put",
            "indices:admin/mapping/auto_put",
        ],
        "index" => &[
            "indices:data/write/index*",
            "indices:data/write/update*",
            "indices:data/write/bulk*",
            "indices:admin/mapping/put",
            "indices:admin/mapping/auto_put",
        ],
        "create" => &[
            "indices:data/write/index*",
            "indices:data/write/bulk*",
            "indices:admin/mapping/put",
            "indices:admin/mapping/auto_put",
        ],
        "create_doc" => &[
            "indices:data/write/index",
            "indices:data/write/index[*",
            "indices:data/write/bulk*",
            "indices:admin/mapping/put",
            "indices:admin/mapping/auto_put",
        ],
        "delete" => &["indices:data/write/delete*", "indices:data/write/bulk*"],
        "create_index" => &[
            "indices:admin/create",
            "indices:admin/auto_create",
            "indices:admin/data_stream/create",
        ],
        "delete_index" => &["indices:admin/delete", "indices:admin/data_stream/delete"],
        "view_index_metadata" => &[
            "indices:admin/aliases/get",
            "indices:admin/get",
            "indices:admin/mappings/get",
            "indices:admin/mappings/fields/get*",
            "indices:admin/resolve/index",
            "indices:admin/settings/get",
            "indices:data/read/field_caps*",
        ],
        "maintenance" => &[
            "indices:admin/refresh*",
            "indices:admin/flush*",
            "indices:admin/synced_flush",
            "indices:admin/forcemerge*",
        ],
        "auto_configure" => &[
            "indices:admin/auto_create",
            "indices:admin/mapping/auto_put",
            "indices:admin/data_stream/create",
        ],
        "manage_follow_index" => &[
            "indices:admin/xpack/ccr/put_follow",
            "indices:admin/xpack/ccr/unfollow",
            "indices:admin/close*",
            "indices:admin/data_stream/promote",
            "indices:admin/rollover",
        ],
        "manage_leader_index" => &[
            "indices:admin/xpack/ccr/forget_follower*",
            "indices:admin/seq_no/*",
        ],
        "manage_ilm" => &["indices:admin/ilm/*"],
        "manage_data_stream_lifecycle" => &["indices:admin/data_stream/lifecycle/*"],
        "cross_cluster_replication" => &[
            "indices:data/read/xpack/ccr/shard_changes*",
            "indices:monitor/stats*",
        ],
        "cross_cluster_replication_internal" => &[
            "indices:internal/admin/ccr/restore/session/*",
            "indices:internal/admin/ccr/restore/file_chunk/get",
        ],
        _ => return None,
    };
    Some(patterns.iter().map(|p| p.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(cluster: &[&str], indices: Value, applications: Value) -> RoleRecord {
        RoleRecord {
            name: "r".into(),
            cluster: cluster.iter().map(|s| s.to_string()).collect(),
            indices: indices.as_array().cloned().unwrap_or_default(),
            applications: applications.as_array().cloned().unwrap_or_default(),
            ..RoleRecord::default()
        }
    }

    fn kibana_privileges() -> Vec<ApplicationPrivilegeRecord> {
        let define = |name: &str, actions: &[&str]| ApplicationPrivilegeRecord {
            application: "kibana-.kibana".into(),
            name: name.into(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
            metadata: Default::default(),
        };
        vec![
            define(
                "space_all",
                &["login:", "version:1", "saved_object:*", "ui:*"],
            ),
            define(
                "space_read",
                &["login:", "version:1", "saved_object:*/get", "ui:*/show"],
            ),
        ]
    }

    fn app_check(privileges: &[&str], resources: &[&str]) -> PrivilegesToCheck {
        PrivilegesToCheck {
            application: vec![ApplicationCheck {
                application: "kibana-.kibana".into(),
                privileges: privileges.iter().map(|s| s.to_string()).collect(),
                resources: resources.iter().map(|s| s.to_string()).collect(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn application_privileges_resolve_through_definitions() {
        let stored = kibana_privileges();
        let reader = role(
            &[],
            json!([]),
            json!([{"application": "kibana-.kibana", "privileges": ["space_read"], "resources": ["space:default"]}]),
        );
        let permissions = RolePermissions::of([&reader]);
        let read = permissions.check(&app_check(&["space_read"], &["space:default"]), &stored);
        assert!(read.has_all_requested);
        // space_all asks for more actions than space_read grants.
        let all = permissions.check(&app_check(&["space_all"], &["space:default"]), &stored);
        assert!(!all.has_all_requested);
        // Another resource is not granted; an action the privilege holds is.
        assert!(
            !permissions
                .check(&app_check(&["space_read"], &["space:other"]), &stored)
                .has_all_requested
        );
        assert!(
            permissions
                .check(
                    &app_check(&["saved_object:dashboard/get"], &["space:default"]),
                    &stored
                )
                .has_all_requested
        );
        // space_all implies space_read (its actions cover them).
        let admin = role(
            &[],
            json!([]),
            json!([{"application": "kibana-*", "privileges": ["space_all"], "resources": ["space:*"]}]),
        );
        let result = RolePermissions::of([&admin]).check(
            &app_check(&["space_read", "space_all"], &["space:default"]),
            &stored,
        );
        assert!(result.has_all_requested, "{result:?}");
        // Without definitions, only the very same undefined name is granted.
        assert!(
            RolePermissions::of([&reader])
                .check(&app_check(&["space_read"], &["space:default"]), &[])
                .has_all_requested
        );
        assert!(
            !RolePermissions::of([&admin])
                .check(&app_check(&["space_read"], &["space:default"]), &[])
                .has_all_requested
        );
    }

    #[test]
    fn superuser_grants_every_application_privilege() {
        let superuser = role(
            &["all"],
            json!([{"names": ["*"], "privileges": ["all"]}]),
            json!([{"application": "*", "privileges": ["*"], "resources": ["*"]}]),
        );
        let result = RolePermissions::of([&superuser]).check(
            &app_check(&["space_all", "anything:goes"], &["space:x", "*"]),
            &kibana_privileges(),
        );
        assert!(result.has_all_requested);
    }

    #[test]
    fn cluster_privileges_imply_as_in_authorization() {
        let security = role(&["manage_security"], json!([]), json!([]));
        let check = |permissions: &RolePermissions, privilege: &str| {
            permissions
                .check(
                    &PrivilegesToCheck {
                        cluster: vec![privilege.into()],
                        ..Default::default()
                    },
                    &[],
                )
                .has_all_requested
        };
        let permissions = RolePermissions::of([&security]);
        assert!(check(&permissions, "manage_user_profile"));
        assert!(check(&permissions, "read_security"));
        assert!(check(&permissions, "cluster:admin/xpack/security/user/get"));
        assert!(!check(&permissions, "manage"));
        assert!(!check(&permissions, "monitor"));
        let manage = RolePermissions::of([&role(&["manage"], json!([]), json!([]))]);
        assert!(check(&manage, "monitor"));
        assert!(!check(&manage, "manage_security"));
        assert!(!check(&manage, "cluster:admin/xpack/security/user/get"));
        assert!(check(
            &RolePermissions::of([&role(&["all"], json!([]), json!([]))]),
            "manage_ml"
        ));
    }

    #[test]
    fn index_privileges_imply_by_their_actions() {
        let writer = role(
            &[],
            json!([{"names": ["logs-*"], "privileges": ["write", "read"]}]),
            json!([]),
        );
        let permissions = RolePermissions::of([&writer]);
        let check = |names: &[&str], privileges: &[&str]| {
            permissions
                .check(
                    &PrivilegesToCheck {
                        index: vec![IndexCheck {
                            names: names.iter().map(|s| s.to_string()).collect(),
                            privileges: privileges.iter().map(|s| s.to_string()).collect(),
                            allow_restricted_indices: false,
                        }],
                        ..Default::default()
                    },
                    &[],
                )
                .has_all_requested
        };
        assert!(check(
            &["logs-2026"],
            &["index", "create_doc", "delete", "read"]
        ));
        assert!(check(&["logs-*"], &["write"]));
        assert!(!check(&["logs-2026"], &["manage"]));
        assert!(!check(&["metrics"], &["read"]));
        assert!(!check(&["*"], &["read"]));
        let all = RolePermissions::of([&role(
            &[],
            json!([{"names": ["*"], "privileges": ["all"]}]),
            json!([]),
        )]);
        assert!(
            all.check(
                &PrivilegesToCheck {
                    index: vec![IndexCheck {
                        names: vec!["anything".into()],
                        privileges: vec!["manage".into(), "monitor".into(), "write".into()],
                        allow_restricted_indices: false,
                    }],
                    ..Default::default()
                },
                &[],
            )
            .has_all_requested
        );
    }
}
