//! Profile uids, exactly as Elasticsearch computes them:
//! `u_` + base64url-without-padding(SHA-256(username)) + `_` + differentiator.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The highest differentiator: at most ten profiles (`_0` to `_9`) share one username hash.
pub const MAX_DIFFERENTIATOR: u32 = 9;

/// The uid without its differentiator. Only the username is hashed (not the realm), and the
/// hash is case-sensitive.
pub fn base_uid(username: &str) -> String {
    format!(
        "u_{}",
        URL_SAFE_NO_PAD.encode(Sha256::digest(username.as_bytes()))
    )
}

/// The full uid for a differentiator.
pub fn uid(username: &str, differentiator: u32) -> String {
    format!("{}_{differentiator}", base_uid(username))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_match_elasticsearch_test_vectors() {
        let cases = [
            (
                "jacknich",
                "u_79HkWkwmnBH5gqFKwoxggWPjEBOur1zLPXQPEl1VBW0_0",
            ),
            ("joe", "u_eGdcwXYIE3LEOrqz6p-3DHQ4HrAtxuk_ttRNFh2m7rM_0"),
            (
                "rac_user",
                "u_ikGyRZWg_2c9Uzv14Glz1FnuFq-96f47IROJPQ5p70U_0",
            ),
            (
                "rac-user",
                "u_5esuUWbOJBMRbdyKHyr4c0X3ZjBM462iUAZbrHRec_s_0",
            ),
            ("elastic", "u_mGBROF_q5bmFCATbLXAcCwKa0k8JvONAwSruelyKA5E_0"),
            ("Joe", "u_bdi319PFxGibM-UbnxC8apvon-j6KhJ8jGwDzQXWis4_0"),
        ];
        for (username, expected) in cases {
            assert_eq!(uid(username, 0), expected, "uid of {username}");
        }
    }

    #[test]
    fn the_differentiator_is_appended_after_the_last_underscore() {
        assert!(uid("rac_user", 1).ends_with("p70U_1"));
        assert_eq!(uid("joe", 0).len(), 47);
    }
}
