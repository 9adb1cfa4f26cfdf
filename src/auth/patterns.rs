//! Wildcard patterns (`*` any run, `?` one character) as Elasticsearch's privilege checks use
//! them: does one pattern match a name, and is everything one pattern matches also matched by
//! another (Elasticsearch answers that with automata; see [`covers`]).

/// Whether `pattern` matches `text` in full. Linear in practice: the classic two-pointer
/// matcher with one backtrack point, O(pattern × text) at worst, and both are bounded inputs.
pub fn matches(pattern: &str, text: &str) -> bool {
    glob(pattern.as_bytes(), text.as_bytes(), false, false)
}

/// Whether `pattern` followed by `*` matches `text`: Elasticsearch reads a bare action name in
/// a role as covering its sub-actions.
pub fn matches_prefix(pattern: &str, text: &str) -> bool {
    glob(pattern.as_bytes(), text.as_bytes(), false, true)
}

/// Whether every name `inner` matches is also matched by `outer`.
///
/// `outer` is matched against `inner` read literally, where `outer`'s `*` may take in
/// `inner`'s wildcards but `outer`'s `?` only a plain character. When that succeeds, every
/// expansion of `inner` is matched too (each of its wildcards sits inside a run an `outer` `*`
/// absorbs), so a `true` is always right. A `false` can be wrong only for containments that
/// need several of `outer`'s wildcards to cover one of `inner`'s in pieces, which privilege
/// patterns (`indices:data/read/*`, `space:*`) do not need.
pub fn covers(outer: &str, inner: &str) -> bool {
    glob(outer.as_bytes(), inner.as_bytes(), true, false)
}

/// Whether some pattern of `outer` covers `inner`.
pub fn any_covers<S: AsRef<str>>(outer: &[S], inner: &str) -> bool {
    outer.iter().any(|o| covers(o.as_ref(), inner))
}

/// `trailing_star` reads the pattern as if a `*` followed it.
fn glob(pattern: &[u8], text: &[u8], text_is_pattern: bool, trailing_star: bool) -> bool {
    let at = |p: usize| match pattern.get(p) {
        Some(&c) => Some(c),
        None if trailing_star && p == pattern.len() => Some(b'*'),
        None => None,
    };
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let plain = !(text_is_pattern && matches!(text[t], b'*' | b'?'));
        if at(p) == Some(b'*') {
            star = Some((p, t));
            p += 1;
        } else if at(p).is_some_and(|c| (c == b'?' && plain) || (c == text[t] && c != b'?')) {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    (p..pattern.len() + usize::from(trailing_star)).all(|i| at(i) == Some(b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names() {
        assert!(matches("space:*", "space:default"));
        assert!(matches("*", ""));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("kibana-*", "kibana-.kibana"));
        assert!(!matches("kibana-*", "kibana"));
        assert!(matches("data:read/*", "data:read/"));
        assert!(matches_prefix(
            "cluster:admin/xpack/security/user",
            "cluster:admin/xpack/security/user/get"
        ));
        assert!(matches_prefix(
            "cluster:admin/*/user",
            "cluster:admin/xpack/security/user/put"
        ));
        assert!(!matches_prefix("cluster:monitor", "cluster:admin/x"));
    }

    #[test]
    fn coverage_is_containment() {
        assert!(covers("*", "anything*"));
        assert!(covers("indices:data/write/*", "indices:data/write/index*"));
        assert!(covers("a*b*", "a*b"));
        assert!(covers("a*", "a?"));
        assert!(covers("space:default", "space:default"));
        assert!(!covers("indices:data/write/index*", "indices:data/write/*"));
        assert!(!covers("a*b", "a*"));
        // `?` is exactly one character; `*` may be none.
        assert!(!covers("?*", "*"));
        assert!(!covers("??", "*"));
        assert!(!covers("space:default", "space:*"));
        assert!(any_covers(&["x", "space:*"], "space:a"));
    }
}
