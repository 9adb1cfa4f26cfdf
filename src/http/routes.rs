//! The gateway's one route table: every endpoint's path template, methods, name (for logs and
//! metrics) and handler. Routing, endpoint names, metric labels, 405 and `Allow` all derive
//! from [`ROUTES`]; adding an endpoint is one entry here plus its handler in `endpoints/`.
//!
//! Matching is written here rather than left to axum's `Router` because Elasticsearch routes
//! by method *after* choosing among overlapping paths: `GET /_security/profile/_activate`
//! reaches get-profile with uid `_activate` (only `POST` is bound to the literal path), while
//! `DELETE` there is a 405 listing both paths' methods. A router that picks the path first
//! (axum, matchit) answers 405 to the `GET`.

use super::endpoints::{handler, node, privileges, profiles, roles, tokens, users, Handler};
use crate::error::Error;
use axum::http::Method;
use std::sync::LazyLock;

/// One path template and what reaches it.
pub(super) struct Route {
    /// Elasticsearch's path template; a `{name}` segment matches any one segment.
    pub(super) template: &'static str,
    pub(super) methods: &'static [Method],
    /// The endpoint's name in logs and metrics (never the raw URI, which holds uids and names).
    pub(super) name: &'static str,
    pub(super) handler: Handler,
}

const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];
const GET_POST: &[Method] = &[Method::GET, Method::POST];
const PUT_POST: &[Method] = &[Method::PUT, Method::POST];
const DELETE: &[Method] = &[Method::DELETE];

macro_rules! route {
    ($methods:expr, $template:literal, $name:literal, $handler:path) => {
        Route {
            template: $template,
            methods: $methods,
            name: $name,
            handler: handler!($handler),
        }
    };
}

// One line per entry reads as a table; rustfmt would spread each over six lines.
#[rustfmt::skip]
pub(super) static ROUTES: &[Route] = &[
    route!(GET,      "/",                                          "info",                 node::info),
    route!(POST,     "/_security/profile/_activate",               "activate_profile",     profiles::activate),
    route!(GET,      "/_security/profile/{uid}",                   "get_profiles",         profiles::get),
    route!(PUT_POST, "/_security/profile/{uid}/_data",             "update_profile_data",  profiles::update_data),
    route!(PUT_POST, "/_security/profile/{uid}/_enable",           "enable_profile",       profiles::enable),
    route!(PUT_POST, "/_security/profile/{uid}/_disable",          "disable_profile",      profiles::disable),
    route!(GET_POST, "/_security/profile/_suggest",                "suggest_profiles",     profiles::suggest),
    route!(GET_POST, "/_security/profile/_has_privileges",         "profile_has_privileges", privileges::profile_has_privileges),
    route!(PUT_POST, "/_security/privilege",                       "put_privileges",       privileges::put),
    route!(GET,      "/_security/privilege",                       "get_privileges",       privileges::get),
    route!(GET,      "/_security/privilege/_builtin",              "get_builtin_privileges", privileges::builtin),
    route!(GET,      "/_security/privilege/{application}",         "get_privileges",       privileges::get),
    route!(GET,      "/_security/privilege/{application}/{name}",  "get_privileges",       privileges::get),
    route!(DELETE,   "/_security/privilege/{application}/{name}",  "delete_privileges",    privileges::delete),
    route!(GET,      "/_security/_authenticate",                   "authenticate",         users::authenticate),
    route!(GET,      "/_security/user",                            "get_users",            users::get),
    route!(GET_POST, "/_security/user/_has_privileges",            "has_privileges",       privileges::user_has_privileges),
    route!(GET_POST, "/_security/user/{username}/_has_privileges", "has_privileges",       privileges::user_has_privileges),
    route!(GET,      "/_security/user/_privileges",                "get_user_privileges",  privileges::user_privileges),
    route!(GET,      "/_security/user/{username}",                 "get_users",            users::get),
    route!(PUT_POST, "/_security/user/{username}",                 "put_user",             users::put),
    route!(DELETE,   "/_security/user/{username}",                 "delete_user",          users::delete),
    route!(PUT_POST, "/_security/user/_password",                  "change_password",      users::change_password),
    route!(PUT_POST, "/_security/user/{username}/_password",       "change_password",      users::change_password),
    route!(PUT_POST, "/_security/user/{username}/_enable",         "enable_user",          users::enable),
    route!(PUT_POST, "/_security/user/{username}/_disable",        "disable_user",         users::disable),
    route!(GET,      "/_security/role",                            "get_roles",            roles::get),
    route!(GET,      "/_security/role/{name}",                     "get_roles",            roles::get),
    route!(PUT_POST, "/_security/role/{name}",                     "put_role",             roles::put),
    route!(DELETE,   "/_security/role/{name}",                     "delete_role",          roles::delete),
    route!(POST,     "/_security/oauth2/token",                    "create_token",         tokens::create),
    route!(DELETE,   "/_security/oauth2/token",                    "invalidate_token",     tokens::invalidate),
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
    Found(&'static Route, Vec<String>),
    WrongMethod(Vec<Method>),
    NoRoute,
}

/// Each route's template split once into segments: `Some(literal)` or `None` for `{name}`.
static PATTERNS: LazyLock<Vec<Vec<Option<&'static str>>>> = LazyLock::new(|| {
    ROUTES
        .iter()
        .map(|route| {
            route
                .template
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|part| (!part.starts_with('{')).then_some(part))
                .collect()
        })
        .collect()
});

/// Route indices by segment count: a path is compared only with templates of its length.
static BY_LENGTH: LazyLock<Vec<Vec<usize>>> = LazyLock::new(|| {
    let longest = PATTERNS.iter().map(Vec::len).max().unwrap_or(0);
    let mut by_length = vec![Vec::new(); longest + 1];
    for (index, pattern) in PATTERNS.iter().enumerate() {
        by_length[pattern.len()].push(index);
    }
    by_length
});

/// The routes whose templates have `length` segments.
fn candidates(
    length: usize,
) -> impl Iterator<Item = (usize, &'static Route, &'static [Option<&'static str>])> {
    BY_LENGTH
        .get(length)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|&index| (index, &ROUTES[index], PATTERNS[index].as_slice()))
}

/// Which segments of a pattern matching `segments` are wildcards, first segment highest: the
/// smallest mask is the most literal match, the one Elasticsearch's path trie prefers.
fn wildcard_mask(pattern: &[Option<&str>], segments: &[&str]) -> Option<u64> {
    if pattern.len() != segments.len() {
        return None;
    }
    let mut mask = 0u64;
    for (part, segment) in pattern.iter().zip(segments) {
        match part {
            Some(literal) if literal != segment => return None,
            _ => mask = (mask << 1) | u64::from(part.is_none()),
        }
    }
    Some(mask)
}

pub(super) fn route(method: &Method, segments: &[&str]) -> Result<Routed, Error> {
    let mut best: Option<(u64, usize)> = None;
    for (index, route, pattern) in candidates(segments.len()) {
        let Some(mask) = wildcard_mask(pattern, segments) else {
            continue;
        };
        if route.methods.contains(method) && best.is_none_or(|(m, _)| mask < m) {
            best = Some((mask, index));
        }
    }
    if let Some((_, index)) = best {
        let mut params = Vec::new();
        for (part, segment) in PATTERNS[index].iter().zip(segments) {
            if part.is_none() {
                let decoded = percent_encoding::percent_decode_str(segment)
                    .decode_utf8()
                    .map_err(|_| {
                        Error::IllegalArgument(format!(
                            "unable to decode path segment [{segment}] as UTF-8"
                        ))
                    })?;
                params.push(decoded.into_owned());
            }
        }
        return Ok(Routed::Found(&ROUTES[index], params));
    }
    // Only a miss needs the methods every matching path accepts.
    let mut allowed: Vec<Method> = candidates(segments.len())
        .filter(|(_, _, pattern)| wildcard_mask(pattern, segments).is_some())
        .flat_map(|(_, route, _)| route.methods.iter().cloned())
        .collect();
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
            Routed::Found(r, params) => format!("{}{params:?}", r.name),
            Routed::WrongMethod(allowed) => format!("405 {allowed:?}"),
            Routed::NoRoute => "400".into(),
        }
    }

    #[test]
    fn routes_prefer_literals_and_fall_back_to_wildcards_by_method() {
        assert_eq!(
            routed(Method::POST, "/_security/profile/_activate"),
            "activate_profile[]"
        );
        assert_eq!(
            routed(Method::GET, "/_security/profile/_activate"),
            "get_profiles[\"_activate\"]"
        );
        assert_eq!(
            routed(Method::PUT, "/_security/user/_password"),
            "change_password[]"
        );
        assert_eq!(
            routed(Method::GET, "/_security/user/_password"),
            "get_users[\"_password\"]"
        );
        assert_eq!(
            routed(Method::DELETE, "/_security/profile/_activate"),
            "405 [GET, POST]"
        );
        assert_eq!(routed(Method::GET, "/_security/nothing"), "400");
        assert_eq!(
            routed(Method::GET, "/_security/user/a%2Cb"),
            "get_users[\"a,b\"]"
        );
    }
}
