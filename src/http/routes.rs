//! Elasticsearch's routing for the gateway: every endpoint, the path patterns and methods that
//! reach it, and the 405 `Allow` list when only the method is wrong.

use crate::error::Error;
use axum::http::Method;

/// Every endpoint the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Info,
    Activate,
    GetProfiles,
    Authenticate,
    GetUsers,
    PutUser,
    DeleteUser,
    ChangePassword,
    EnableUser,
    DisableUser,
    GetRoles,
    PutRole,
    DeleteRole,
    CreateToken,
    InvalidateToken,
    UpdateProfileData,
    EnableProfile,
    DisableProfile,
    SuggestProfiles,
}

impl Endpoint {
    /// The name used in logs and metrics (never the raw URI, which holds uids and names).
    pub(super) fn name(self) -> &'static str {
        match self {
            Endpoint::Info => "info",
            Endpoint::Activate => "activate_profile",
            Endpoint::GetProfiles => "get_profiles",
            Endpoint::Authenticate => "authenticate",
            Endpoint::GetUsers => "get_users",
            Endpoint::PutUser => "put_user",
            Endpoint::DeleteUser => "delete_user",
            Endpoint::ChangePassword => "change_password",
            Endpoint::EnableUser => "enable_user",
            Endpoint::DisableUser => "disable_user",
            Endpoint::GetRoles => "get_roles",
            Endpoint::PutRole => "put_role",
            Endpoint::DeleteRole => "delete_role",
            Endpoint::CreateToken => "create_token",
            Endpoint::InvalidateToken => "invalidate_token",
            Endpoint::UpdateProfileData => "update_profile_data",
            Endpoint::EnableProfile => "enable_profile",
            Endpoint::DisableProfile => "disable_profile",
            Endpoint::SuggestProfiles => "suggest_profiles",
        }
    }
}

/// A path pattern (`{}` matches one segment) and what each method does there. Literal
/// patterns are listed before the wildcard ones they overlap, as Elasticsearch's trie prefers.
/// Path segments and the endpoint each method reaches there.
type Route = (&'static [&'static str], &'static [(Method, Endpoint)]);

const ROUTES: &[Route] = &[
    (&[], &[(Method::GET, Endpoint::Info)]),
    (
        &["_security", "profile", "_activate"],
        &[(Method::POST, Endpoint::Activate)],
    ),
    (
        &["_security", "profile", "_suggest"],
        &[
            (Method::GET, Endpoint::SuggestProfiles),
            (Method::POST, Endpoint::SuggestProfiles),
        ],
    ),
    (
        &["_security", "profile", "{}"],
        &[(Method::GET, Endpoint::GetProfiles)],
    ),
    (
        &["_security", "profile", "{}", "_data"],
        &[
            (Method::POST, Endpoint::UpdateProfileData),
            (Method::PUT, Endpoint::UpdateProfileData),
        ],
    ),
    (
        &["_security", "profile", "{}", "_enable"],
        &[
            (Method::POST, Endpoint::EnableProfile),
            (Method::PUT, Endpoint::EnableProfile),
        ],
    ),
    (
        &["_security", "profile", "{}", "_disable"],
        &[
            (Method::POST, Endpoint::DisableProfile),
            (Method::PUT, Endpoint::DisableProfile),
        ],
    ),
    (
        &["_security", "_authenticate"],
        &[(Method::GET, Endpoint::Authenticate)],
    ),
    (&["_security", "user"], &[(Method::GET, Endpoint::GetUsers)]),
    (
        &["_security", "user", "_password"],
        &[
            (Method::POST, Endpoint::ChangePassword),
            (Method::PUT, Endpoint::ChangePassword),
        ],
    ),
    (
        &["_security", "user", "{}"],
        &[
            (Method::GET, Endpoint::GetUsers),
            (Method::POST, Endpoint::PutUser),
            (Method::PUT, Endpoint::PutUser),
            (Method::DELETE, Endpoint::DeleteUser),
        ],
    ),
    (
        &["_security", "user", "{}", "_password"],
        &[
            (Method::POST, Endpoint::ChangePassword),
            (Method::PUT, Endpoint::ChangePassword),
        ],
    ),
    (
        &["_security", "user", "{}", "_enable"],
        &[
            (Method::POST, Endpoint::EnableUser),
            (Method::PUT, Endpoint::EnableUser),
        ],
    ),
    (
        &["_security", "user", "{}", "_disable"],
        &[
            (Method::POST, Endpoint::DisableUser),
            (Method::PUT, Endpoint::DisableUser),
        ],
    ),
    (
        &["_security", "oauth2", "token"],
        &[
            (Method::POST, Endpoint::CreateToken),
            (Method::DELETE, Endpoint::InvalidateToken),
        ],
    ),
    (&["_security", "role"], &[(Method::GET, Endpoint::GetRoles)]),
    (
        &["_security", "role", "{}"],
        &[
            (Method::GET, Endpoint::GetRoles),
            (Method::POST, Endpoint::PutRole),
            (Method::PUT, Endpoint::PutRole),
            (Method::DELETE, Endpoint::DeleteRole),
        ],
    ),
];

/// Elasticsearch lists allowed methods in this order.
const METHOD_ORDER: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
    Method::HEAD,
    Method::PATCH,
    Method::TRACE,
    Method::CONNECT,
];

pub(super) enum Routed {
    Found(Endpoint, Vec<String>),
    WrongMethod(Vec<Method>),
    NoRoute,
}

pub(super) fn route(method: &Method, segments: &[&str]) -> Result<Routed, Error> {
    let mut allowed: Vec<Method> = Vec::new();
    for (pattern, methods) in ROUTES {
        if pattern.len() != segments.len() {
            continue;
        }
        let matches = pattern
            .iter()
            .zip(segments)
            .all(|(p, s)| *p == "{}" || p == s);
        if !matches {
            continue;
        }
        if let Some((_, endpoint)) = methods.iter().find(|(m, _)| m == method) {
            let mut params = Vec::new();
            for (p, s) in pattern.iter().zip(segments) {
                if *p == "{}" {
                    let decoded = percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .map_err(|_| {
                            Error::IllegalArgument(format!(
                                "unable to decode path segment [{s}] as UTF-8"
                            ))
                        })?;
                    params.push(decoded.into_owned());
                }
            }
            return Ok(Routed::Found(*endpoint, params));
        }
        allowed.extend(methods.iter().map(|(m, _)| m.clone()));
    }
    if allowed.is_empty() {
        return Ok(Routed::NoRoute);
    }
    allowed.sort_by_key(|m| METHOD_ORDER.iter().position(|o| o == m));
    allowed.dedup();
    Ok(Routed::WrongMethod(allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(method: Method, path: &str) -> String {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match route(&method, &segments).unwrap() {
            Routed::Found(e, params) => format!("{e:?}{params:?}"),
            Routed::WrongMethod(allowed) => format!("405 {allowed:?}"),
            Routed::NoRoute => "400".into(),
        }
    }

    #[test]
    fn routes_prefer_literals_and_fall_back_to_wildcards_by_method() {
        assert_eq!(
            routed(Method::POST, "/_security/profile/_activate"),
            "Activate[]"
        );
        assert_eq!(
            routed(Method::GET, "/_security/profile/_activate"),
            "GetProfiles[\"_activate\"]"
        );
        assert_eq!(
            routed(Method::PUT, "/_security/user/_password"),
            "ChangePassword[]"
        );
        assert_eq!(
            routed(Method::GET, "/_security/user/_password"),
            "GetUsers[\"_password\"]"
        );
        assert_eq!(
            routed(Method::DELETE, "/_security/profile/_activate"),
            "405 [GET, POST]"
        );
        assert_eq!(routed(Method::GET, "/_security/nothing"), "400");
        assert_eq!(
            routed(Method::GET, "/_security/user/a%2Cb"),
            "GetUsers[\"a,b\"]"
        );
    }
}
