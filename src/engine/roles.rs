//! Roles: SPEC-security §3. Built-in roles are fixed; native roles live in the store.

use super::users::{invalid_name_message, valid_name};
use super::{Caller, Engine};
use crate::auth::privileges::{
    action, builtin_role, builtin_role_ref, check_cluster_privilege, BUILTIN_ROLE_NAMES,
};
use crate::error::{Error, Missing, Violation};
use crate::model::RoleRecord;
use crate::store::{Store, StoreError};
use std::borrow::Cow;

/// Finds a role: built-in first (borrowed, never copied), then the store.
pub async fn find_role(
    store: &dyn Store,
    name: &str,
) -> Result<Option<Cow<'static, RoleRecord>>, StoreError> {
    match builtin_role_ref(name) {
        Some(role) => Ok(Some(Cow::Borrowed(role))),
        None => Ok(store.get_role(name).await?.map(Cow::Owned)),
    }
}

/// Elasticsearch's role validation, all messages accumulated.
pub fn validate_role(role: &RoleRecord) -> Result<(), Error> {
    let mut violations = Vec::new();
    if builtin_role(&role.name).is_some() {
        violations.push(Violation::new(
            "name",
            format!("Role [{}] is reserved and may not be used.", role.name),
        ));
    }
    if !valid_name(&role.name) {
        violations.push(Violation::new("name", invalid_name_message("Role")));
    }
    for privilege in &role.cluster {
        if let Err(message) = check_cluster_privilege(privilege) {
            violations.push(Violation::new("cluster", message));
        }
    }
    super::privileges::validate_role_applications(role, &mut violations);
    if role.metadata.keys().any(|k| k.starts_with('_')) {
        violations.push(Violation::new(
            "metadata",
            "role descriptor metadata keys may not start with [_]",
        ));
    }
    Error::check(violations)
}

impl Engine {
    /// Creates or replaces a native role; true when created.
    pub async fn put_role(&self, caller: &Caller, role: RoleRecord) -> Result<bool, Error> {
        super::privileges::check_application_entries(&role)?;
        validate_role(&role)?;
        self.authorize(caller, action::ROLE_PUT)?;
        Ok(self.store().put_role(role).await?)
    }

    /// Reads roles by name (all when `names` is empty); unknown names are left out, and naming
    /// only unknown roles is [`Error::NoneFound`].
    pub async fn get_roles(
        &self,
        caller: &Caller,
        names: &[String],
    ) -> Result<Vec<RoleRecord>, Error> {
        self.check_name_count("names", "role names", names.len())?;
        self.authorize(caller, action::ROLE_GET)?;
        if names.is_empty() {
            let mut roles: Vec<RoleRecord> = BUILTIN_ROLE_NAMES
                .iter()
                .filter_map(|n| builtin_role(n))
                .collect();
            roles.extend(self.store().list_roles().await?);
            return Ok(roles);
        }
        let mut roles = Vec::new();
        for name in names {
            if let Some(role) = find_role(self.store(), name).await? {
                roles.push(role.into_owned());
            }
        }
        if roles.is_empty() {
            return Err(Error::NoneFound(format!(
                "roles [{}] not found",
                names.join(",")
            )));
        }
        Ok(roles)
    }

    /// Deletes a native role ([`Error::NothingFound`] when there was none).
    pub async fn delete_role(&self, caller: &Caller, name: &str) -> Result<(), Error> {
        self.authorize(caller, action::ROLE_DELETE)?;
        if builtin_role(name).is_some() {
            return Err(Error::IllegalArgument(format!(
                "role [{name}] is reserved and cannot be deleted"
            )));
        }
        if !self.store().delete_role(name).await? {
            return Err(Error::NothingFound(Missing::Role(name.to_owned())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, cluster: &[&str]) -> RoleRecord {
        RoleRecord {
            name: name.into(),
            cluster: cluster.iter().map(|s| s.to_string()).collect(),
            ..RoleRecord::default()
        }
    }

    #[test]
    fn role_validation_accumulates_elasticsearch_messages() {
        assert!(validate_role(&role(
            "profile_admin",
            &[
                "manage_user_profile",
                "cluster:admin/xpack/security/profile/*"
            ]
        ))
        .is_ok());
        let reason = validate_role(&role("superuser", &["Bogus"]))
            .unwrap_err()
            .reason();
        assert!(reason.starts_with("Validation Failed: 1: Role [superuser] is reserved and may not be used.;2: unknown cluster privilege [bogus]. a privilege must be either one of the predefined cluster privilege names [none,"), "{reason}");
    }
}
