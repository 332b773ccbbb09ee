//! Translations of the pages people see (the pairing page, the HTML error pages): Fluent
//! files in `assets/i18n/<lang>/pairing.ftl` compiled in with `fluent-templates`, the
//! language chosen by `?lang=` or else `Accept-Language` (negotiated with `fluent-langneg`),
//! falling back to English.
//!
//! Languages: English (`en`), Indonesian (`id`), Portuguese (Brazil, `pt-BR`), Spanish (`es`).

use std::collections::HashMap;

use fluent_templates::Loader as _;
use fluent_templates::fluent_bundle::FluentValue;
use unic_langid::LanguageIdentifier;

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./assets/i18n",
        fallback_language: "en",
        // Plain text for the page's own placeholders (`{s}`): no Unicode isolation marks.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// The languages of the pages, as `lang` tags; the first is the fallback.
pub(crate) const LANGUAGES: [&str; 4] = ["en", "id", "pt-BR", "es"];

/// A chosen language.
#[derive(Debug, Clone)]
pub(crate) struct Lang(LanguageIdentifier);

impl Lang {
    /// `lang` (the `?lang=` override) when it names a supported language, else the best
    /// match of `accept_language` (an `Accept-Language` header), else English. `pt`, `pt-PT`
    /// and `es-MX` map to `pt-BR` and `es`.
    pub(crate) fn negotiate(lang: Option<&str>, accept_language: Option<&str>) -> Self {
        let available: Vec<LanguageIdentifier> =
            LANGUAGES.iter().filter_map(|l| l.parse().ok()).collect();
        let requested: Vec<LanguageIdentifier> = match lang.and_then(|l| l.parse().ok()) {
            Some(l) => vec![l],
            None => fluent_langneg::accepted_languages::parse(accept_language.unwrap_or("")),
        };
        let chosen = fluent_langneg::negotiate_languages(
            &requested,
            &available,
            None,
            fluent_langneg::NegotiationStrategy::Lookup,
        )
        .first()
        .map(|l| (*l).clone());
        let chosen = match chosen {
            Some(l) => l,
            // `?lang=` that matched nothing falls back to the header.
            None if lang.is_some() => return Self::negotiate(None, accept_language),
            None => LANGUAGES[0].parse().unwrap_or_default(),
        };
        Self(chosen)
    }

    /// The `lang` tag, e.g. `pt-BR`.
    pub(crate) fn tag(&self) -> String {
        self.0.to_string()
    }

    /// The text of `key`.
    pub(crate) fn text(&self, key: &str) -> String {
        LOCALES.lookup(&self.0, key)
    }

    /// The text of `key` with string arguments.
    pub(crate) fn text_with(&self, key: &str, args: &[(&'static str, &str)]) -> String {
        let args: HashMap<std::borrow::Cow<'static, str>, FluentValue<'_>> = args
            .iter()
            .map(|(k, v)| ((*k).into(), FluentValue::from(*v)))
            .collect();
        LOCALES.lookup_with_args(&self.0, key, &args)
    }
}

/// `text` with `& < > " '` escaped for HTML text and attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table() {
        for (query, header, want) in [
            (None, None, "en"),
            (None, Some("id-ID,id;q=0.9,en-US;q=0.8"), "id"),
            (None, Some("pt-BR,pt;q=0.9"), "pt-BR"),
            (None, Some("pt-PT"), "pt-BR"),
            (None, Some("es-MX,es;q=0.9"), "es"),
            (None, Some("fr-FR,fr;q=0.9"), "en"),
            (None, Some("fr-FR,es;q=0.5"), "es"),
            (Some("es"), Some("id"), "es"),
            (Some("pt-br"), None, "pt-BR"),
            (Some("xx"), Some("id"), "id"),
            (Some("!!"), None, "en"),
        ] {
            assert_eq!(
                Lang::negotiate(query, header).tag(),
                want,
                "{query:?} {header:?}"
            );
        }
    }

    #[test]
    fn every_language_has_every_key() {
        let args = [
            ("seconds", "1"),
            ("reason", "r"),
            ("attempt", "2"),
            ("brand", "B"),
        ];
        let en = Lang::negotiate(Some("en"), None);
        for tag in LANGUAGES {
            let lang = Lang::negotiate(Some(tag), None);
            for key in crate::routes::pair::PAGE_KEYS {
                let text = lang.text_with(key, &args);
                assert!(!text.is_empty() && !text.contains("Unknown"), "{tag} {key}");
                // Translated, not the English fallback (a missing key falls back);
                // "Error" is the same word in Spanish.
                if tag != "en" && !(key == "error-code" && tag == "es") {
                    assert_ne!(text, en.text_with(key, &args), "{tag} {key} untranslated");
                }
            }
        }
        assert_eq!(
            en.text_with("refreshes-in", &[("seconds", "{s}")]),
            "Refreshes in {s} s"
        );
    }
}
