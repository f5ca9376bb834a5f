//! Object-key safety, written once: what the stores ([`check_object_key`]),
//! the OFS key parser ([`check_path`]), every prefix (store URLs, the
//! destination prefix, output keys: [`check_prefix`]) and every error
//! message that quotes a hostile value ([`clip`]) rely on.

/// Why a path-like value (a key, a prefix) is unsafe, or `Ok`. Rejects
/// what could escape a prefix or a directory, or confuse an S3 key
/// consumer (a filesystem mirror, a URL): a leading `/`, backslashes,
/// control characters, and `.`/`..`/empty path segments (so also the
/// empty string).
pub fn check_path(value: &str) -> Result<(), &'static str> {
    if value.starts_with('/') {
        return Err("starts with '/'");
    }
    if value.contains('\\') {
        return Err("contains a backslash");
    }
    if value.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    for segment in value.split('/') {
        match segment {
            "" => return Err("has an empty path segment"),
            "." | ".." => return Err("has a '.' or '..' path segment"),
            _ => {}
        }
    }
    Ok(())
}

/// S3's limit on a key's length in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// [`check_path`] for a whole object key, which is also non-empty and at
/// most [`MAX_KEY_BYTES`] long.
pub fn check_object_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return Err("longer than 1024 bytes");
    }
    check_path(key)
}

/// A key prefix (from a store URL, the configuration or a CLI argument),
/// without its trailing `/`. Empty means the bucket root; one trailing `/`
/// is tolerated because `nos/` and `nos` are both natural ways to write a
/// prefix; otherwise it passes [`check_object_key`] (so `/nos`, `nos//`
/// and `a/../b` are refused, not silently repaired).
pub fn check_prefix(prefix: &str) -> Result<&str, &'static str> {
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    if !prefix.is_empty() {
        check_object_key(prefix)?;
    }
    Ok(prefix)
}

/// Keeps hostile or huge values from flooding logs through error messages:
/// the first 200 characters, then `...`.
pub fn clip(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}...", s.get(..cut).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for ok in ["a", "nos/x.nc", "a/..b/c", "é"] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
            assert_eq!(check_object_key(ok), Ok(()), "{ok}");
        }
        for bad in ["", "/a", "a//b", "a/", "./a", "a/../b", "a\\b", "a\nb"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
            assert!(check_object_key(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_object_key(""), Err("empty"));
        assert_eq!(check_path(&"a".repeat(2000)), Ok(()));
        assert!(check_object_key(&"a".repeat(MAX_KEY_BYTES + 1)).is_err());
        assert_eq!(check_object_key(&"a".repeat(MAX_KEY_BYTES)), Ok(()));
    }

    #[test]
    fn prefixes() {
        for (given, want) in [
            ("", ""),
            ("/", ""),
            ("nos", "nos"),
            ("nos/", "nos"),
            ("a/b/", "a/b"),
        ] {
            assert_eq!(check_prefix(given), Ok(want), "{given:?}");
        }
        for bad in [
            "//", "/nos", "nos//", "a//b", "../x", "a/./b", "a\\b", "a\nb",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(check_prefix(&"a".repeat(MAX_KEY_BYTES + 1)).is_err());
    }

    #[test]
    fn clipping() {
        assert_eq!(clip("abc"), "abc");
        let long = "é".repeat(300);
        let c = clip(&long);
        assert_eq!(c.chars().count(), 203);
        assert!(c.ends_with("..."));
        assert_eq!(clip(&"x".repeat(200)), "x".repeat(200));
    }
}
