//! Where the secret comes from (SPEC, "Secret channel", "Getting the
//! secret"): `--secret=WORDS`, `DUPLEX_SECRET`, a secret `serve` generates
//! from the OS's random generator, or a prompt on the terminal without echo.
//! Every way out of here is a [`Secret`] or a reason that is a usage error.

use super::Secret;
use std::ffi::OsString;
use zeroize::Zeroizing;

/// The word list generated secrets are made of: short common lowercase
/// words, one a line.
const WORDS: &str = include_str!("words.txt");

/// How many words a generated secret has.
pub const GENERATED_WORDS: usize = 5;

/// The variable `--secret` alone reads.
pub const ENV: &str = "DUPLEX_SECRET";

fn list() -> Vec<&'static str> {
    WORDS.lines().filter(|word| !word.is_empty()).collect()
}

/// The bits of a generated secret: `GENERATED_WORDS × log2(words)`.
pub fn generated_bits() -> f64 {
    GENERATED_WORDS as f64 * (list().len() as f64).log2()
}

/// A new secret of [`GENERATED_WORDS`] words, each drawn uniformly from the
/// list with the OS's random generator, joined by `-`.
pub fn generate() -> Result<Zeroizing<String>, String> {
    let words = list();
    let n = words.len() as u32;
    // Rejection keeps every word equally likely: no modulo bias.
    let zone = u32::MAX - u32::MAX % n;
    let mut out = Zeroizing::new(String::new());
    for i in 0..GENERATED_WORDS {
        let pick = loop {
            let mut bytes = [0; 4];
            // The OS's generator itself (getrandom(2)), no user-space DRBG.
            getrandom::getrandom(&mut bytes)
                .map_err(|error| format!("the OS's random generator failed: {error}"))?;
            let value = u32::from_le_bytes(bytes);
            if value < zone {
                break value % n;
            }
        };
        if i > 0 {
            out.push('-');
        }
        out.push_str(words[pick as usize]);
    }
    Ok(out)
}

/// `DUPLEX_SECRET`: `Ok(None)` when unset; set but blank or not UTF-8 is
/// a usage error.
pub fn from_env(value: Option<OsString>) -> Result<Option<Secret>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    let value = Zeroizing::new(
        value
            .into_string()
            .map_err(|_| format!("{ENV} is not valid UTF-8"))?,
    );
    Secret::new(&value)
        .map(Some)
        .map_err(|_| format!("{ENV} is set but blank"))
}

/// Asks for the secret on the terminal (`/dev/tty`), without echo. No
/// terminal is a usage error.
pub fn prompt() -> Result<Secret, String> {
    let answer = rpassword::prompt_password("secret: ").map_err(|error| {
        format!(
            "--secret needs the words: give --secret=WORDS or {ENV}, or run on a terminal ({})",
            crate::error::describe(&error)
        )
    })?;
    let answer = Zeroizing::new(answer);
    Secret::new(&answer).map_err(|_| "the secret is empty".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_lowercase_words_without_repeats() {
        let words = list();
        let mut unique = words.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), words.len());
        assert!(words.len() >= 256);
        assert!(
            words
                .iter()
                .all(|w| w.bytes().all(|b| b.is_ascii_lowercase()))
        );
        assert!(generated_bits() >= 40.0, "{} bits", generated_bits());
    }

    #[test]
    fn a_generated_secret_is_words_from_the_list() {
        let words = list();
        let secret = generate().unwrap();
        let parts: Vec<&str> = secret.split('-').collect();
        assert_eq!(parts.len(), GENERATED_WORDS);
        assert!(parts.iter().all(|p| words.contains(p)));
        assert_ne!(*generate().unwrap(), *secret, "two draws alike");
    }

    #[test]
    fn the_environment_is_trimmed_and_refused_when_blank() {
        assert!(from_env(None).unwrap().is_none());
        let secret = from_env(Some(" olive-tundra\n".into())).unwrap().unwrap();
        assert_eq!(secret.bytes(), b"olive-tundra");
        assert!(from_env(Some(" \t\r\n".into())).is_err());
        assert!(from_env(Some("".into())).is_err());
        use std::os::unix::ffi::OsStringExt;
        assert!(from_env(Some(OsString::from_vec(vec![0xff, 0x61]))).is_err());
    }

    #[test]
    fn only_ascii_whitespace_is_trimmed() {
        let secret = Secret::new("\u{a0}x y\u{a0} ").unwrap();
        assert_eq!(secret.bytes(), "\u{a0}x y\u{a0}".as_bytes());
    }
}
