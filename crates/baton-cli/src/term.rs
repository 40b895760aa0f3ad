//! Whether the terminal can show ▶ ✓ ✗, and their ASCII stand-ins when it cannot.

/// The marks progress lines use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glyphs {
    pub enter: &'static str,
    pub ok: &'static str,
    pub fail: &'static str,
    pub ellipsis: &'static str,
}

pub const UNICODE: Glyphs = Glyphs {
    enter: "▶",
    ok: "✓",
    fail: "✗",
    ellipsis: "…",
};

pub const ASCII: Glyphs = Glyphs {
    enter: ">",
    ok: "ok",
    fail: "x",
    ellipsis: "...",
};

/// Whether to print ASCII only: asked for (`--ascii`), a dumb terminal (`TERM=dumb`),
/// or a locale whose character set is not UTF-8. The locale is the first of
/// `LC_ALL`, `LC_CTYPE`, `LANG` that is set and not empty, as POSIX orders them;
/// none set is the POSIX locale, whose character set is ASCII.
pub fn ascii_only(asked: bool, env: impl Fn(&str) -> Option<String>) -> bool {
    if asked || env("TERM").is_some_and(|t| t == "dumb") {
        return true;
    }
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|name| env(name).filter(|v| !v.is_empty()));
    match locale {
        Some(locale) => {
            let lower = locale.to_ascii_lowercase();
            !(lower.contains("utf-8") || lower.contains("utf8"))
        }
        None => true,
    }
}

/// [`ascii_only`] for this process's environment.
pub fn glyphs(asked: bool) -> Glyphs {
    if ascii_only(asked, |name| std::env::var(name).ok()) {
        ASCII
    } else {
        UNICODE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn utf8_locales_get_the_marks_and_everything_else_ascii() {
        assert!(!ascii_only(false, env(&[("LANG", "en_US.UTF-8")])));
        assert!(!ascii_only(false, env(&[("LANG", "C.utf8")])));
        assert!(ascii_only(true, env(&[("LANG", "en_US.UTF-8")])), "--ascii");
        assert!(ascii_only(false, env(&[])), "no locale is POSIX's: ASCII");
        assert!(ascii_only(false, env(&[("LANG", "C")])));
        assert!(ascii_only(false, env(&[("LANG", "en_US.ISO-8859-1")])));
        // LC_ALL over LC_CTYPE over LANG; an empty one does not count.
        assert!(ascii_only(
            false,
            env(&[("LC_ALL", "C"), ("LANG", "en_US.UTF-8")])
        ));
        assert!(!ascii_only(
            false,
            env(&[("LC_ALL", ""), ("LC_CTYPE", "C.UTF-8"), ("LANG", "C")])
        ));
        assert!(ascii_only(
            false,
            env(&[("TERM", "dumb"), ("LANG", "en_US.UTF-8")])
        ));
        assert!(!ascii_only(
            false,
            env(&[("TERM", "xterm"), ("LANG", "en_US.UTF-8")])
        ));
    }
}
