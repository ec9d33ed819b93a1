//! What text may enter Reclaim. Names, products and ids end up in email subjects, in the
//! plain-text body next to the answer links, on pages and in CSV files; one line break or an
//! invisible direction override in an imported product name is enough to put a fake "Yes,
//! keep it" link above the real one. Every entry point (CSV and JSON imports, usage imports,
//! the API, the pages, seed files, plugin answers) goes through the checks here, so there is
//! one rule and one wording for what is refused.

use crate::intake::FieldError;
use std::fmt;

/// Why a text was refused: the first character that may not be there, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextError {
    /// What the character is, in words people know ("a line break").
    pub what: &'static str,
    pub code: u32,
    /// 1-based position in characters, so a person can find it.
    pub at: usize,
    /// Single-line fields say so, because a line break is fine elsewhere.
    pub single_line: bool,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "contains {} (U+{:04X}) at character {}",
            self.what, self.code, self.at
        )?;
        if self.single_line {
            f.write_str("; this field must be one line of visible text")
        } else {
            f.write_str("; remove it and try again")
        }
    }
}

/// The characters that change how text reads without being seen: the bidirectional
/// embeddings, overrides and isolates (the "Trojan Source" set) and the direction marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Names a character a field may not hold, or `None` when it may.
fn forbidden(c: char, single_line: bool) -> Option<&'static str> {
    if c == '\0' {
        Some("a NUL character")
    } else if matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}') {
        single_line.then_some("a line break")
    } else if matches!(c, '\u{0B}' | '\u{0C}' | '\u{85}') {
        // Vertical tab, form feed and NEL break lines in some readers and mean nothing in a note.
        Some(if single_line {
            "a line break"
        } else {
            "a control character"
        })
    } else if c == '\t' {
        single_line.then_some("a tab")
    } else if c.is_control() {
        Some("a control character")
    } else if is_bidi_control(c) {
        Some("an invisible text-direction control")
    } else {
        None
    }
}

fn check(s: &str, single_line: bool) -> Result<(), TextError> {
    match s
        .chars()
        .enumerate()
        .find_map(|(i, c)| forbidden(c, single_line).map(|what| (i, c, what)))
    {
        None => Ok(()),
        Some((i, c, what)) => Err(TextError {
            what,
            code: u32::from(c),
            at: i + 1,
            single_line,
        }),
    }
}

/// Names, publishers, products, versions, SKUs, devices, ids, group names, rule names: no
/// line breaks, tabs, control characters or direction controls.
pub fn single_line(s: &str) -> Result<(), TextError> {
    check(s, true)
}

/// Work notes, comments and reasons: line breaks and tabs are kept; NUL, other control
/// characters and direction controls are refused.
pub fn multi_line(s: &str) -> Result<(), TextError> {
    check(s, false)
}

/// Text Reclaim did not type and cannot send back (a plugin's answer, a mail server's reply,
/// a browser's user agent): refusing it would lose the fact it reports, so what may not be
/// stored is shown as `\u{…}` instead, visible and harmless.
pub fn cleaned(s: &str, single_line: bool) -> String {
    if check(s, single_line).is_ok() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match forbidden(c, single_line) {
            None => out.push(c),
            Some(_) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    out
}

/// [`single_line`] for a named field, as the field error every entry point reports.
pub fn one_line(field: &str, v: &str) -> Result<(), FieldError> {
    single_line(v).map_err(|e| FieldError {
        field: field.to_string(),
        message: e.to_string(),
    })
}

/// [`email`] for a named field; blank counts as no address.
pub fn address(field: &str, v: Option<&str>) -> Result<(), FieldError> {
    match v.map(str::trim) {
        Some(e) if !e.is_empty() => email(e).map_err(|message| FieldError {
            field: field.to_string(),
            message,
        }),
        _ => Ok(()),
    }
}

/// Whether `s` is exactly one deliverable mailbox: a plain `local@domain.tld` address as a
/// maintained RFC 5322 parser reads it, with none of the forms that are valid but only ever
/// used to mislead here: a display name (`Ann <a@b.example>`), a list
/// (`a@b.example,c@d.example`), a quoted local part (`"a@b"@evil.example`), comments or an IP
/// literal domain.
pub fn email(s: &str) -> Result<(), String> {
    if let Err(e) = single_line(s) {
        return Err(format!(
            "'{}' is not an email address: {e}",
            cleaned(s, true)
        ));
    }
    let plain = !s.is_empty()
        && !s.starts_with('"')
        && !s.chars().any(|c| {
            c.is_whitespace()
                || matches!(
                    c,
                    '"' | '(' | ')' | ',' | ';' | '<' | '>' | '[' | ']' | '\\'
                )
        });
    let options = email_address::Options {
        minimum_sub_domains: 2,
        allow_domain_literal: false,
        allow_display_text: false,
        allow_long_local_parts: false,
    };
    match email_address::EmailAddress::parse_with_options(s, options) {
        Ok(parsed) if plain && parsed.as_str() == s => Ok(()),
        Ok(_) => Err(format!(
            "'{s}' is not a plain email address (one mailbox like name@example.com)"
        )),
        Err(e) => Err(format!("'{s}' is not an email address ({e})")),
    }
}

/// One CSV cell that a spreadsheet opens as text, never as a formula: a cell starting with
/// `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'` (OWASP's rule for CSV
/// injection), and a cell with a comma, quote or line break is quoted. Every CSV Reclaim
/// writes builds its text cells here.
pub fn csv_cell(s: &str) -> String {
    let neutral = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if neutral.contains([',', '"', '\n', '\r']) || neutral != s {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

/// A count as people read it, thousands separated ("12,400"), the same way amounts are.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(d);
    }
    grouped
}

/// An amount as people read it: thousands separated, two decimals, the currency's code in
/// front ("USD 1,975.00"). Exports keep plain numbers (`intake::format_money`) for
/// spreadsheets.
pub fn money(cents: crate::Cents, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let amount = format!("{sign}{}.{:02}", thousands(abs / 100), abs % 100);
    if currency.is_empty() {
        amount
    } else {
        format!("{currency} {amount}")
    }
}

/// An amount with its period, as people read it: "EUR 1,200.00 per year", "EUR 400.00
/// one-time". Savings and prices are never shown without one.
pub fn money_per(cents: crate::Cents, currency: &str, period: crate::PricePeriod) -> String {
    format!("{} {}", money(cents, currency), period.words())
}

/// A price of one right: "EUR 1,200.00 per seat per year", "EUR 400.00 per seat, one-time".
pub fn price_per_seat(cents: crate::Cents, currency: &str, period: crate::PricePeriod) -> String {
    let sep = if period == crate::PricePeriod::OneTime {
        ", "
    } else {
        " "
    };
    format!("{} per seat{sep}{}", money(cents, currency), period.words())
}

/// A saving with its basis ("EUR 14,400.00 per year"): what pages, the list and mail show for a
/// candidate.
pub fn saving(s: crate::Saving, currency: &str) -> String {
    money_per(s.cents, currency, s.basis)
}

/// A currency code as settings take it: three capital letters (ISO 4217), such as EUR.
pub fn currency_code(code: &str) -> Result<String, String> {
    let code = code.trim();
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(code.to_string())
    } else {
        Err(format!(
            "'{code}' is not a currency code: use three capital letters, such as USD or EUR"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_fields_refuse_every_way_to_start_a_new_line() {
        assert_eq!(
            single_line("Acro\nYes, keep it: http://evil.example").map_err(|e| e.at),
            Err(5)
        );
        for bad in [
            "a\nb",
            "a\rb",
            "a\u{2028}b",
            "a\u{2029}b",
            "a\u{85}b",
            "a\u{0B}b",
            "a\u{0C}b",
        ] {
            let e = single_line(bad).unwrap_err();
            assert_eq!(e.what, "a line break", "{bad:?}");
            assert_eq!(e.at, 2);
        }
    }

    #[test]
    fn single_line_fields_refuse_nul_tabs_controls_and_direction_overrides() {
        assert_eq!(single_line("a\0").unwrap_err().what, "a NUL character");
        assert_eq!(single_line("a\tb").unwrap_err().what, "a tab");
        assert_eq!(
            single_line("\u{1b}[31m").unwrap_err().what,
            "a control character"
        );
        assert_eq!(
            single_line("\u{9b}").unwrap_err().what,
            "a control character"
        );
        assert_eq!(
            single_line("\u{7f}").unwrap_err().what,
            "a control character"
        );
        for c in ['\u{202E}', '\u{2066}', '\u{2069}', '\u{200F}', '\u{061C}'] {
            assert_eq!(
                single_line(&format!("exe{c}fdp.pdf")).unwrap_err().what,
                "an invisible text-direction control"
            );
        }
    }

    #[test]
    fn ordinary_names_in_any_script_pass() {
        for ok in [
            "Adobe Acrobat Pro DC",
            "Zoë Müller",
            "山田 太郎",
            "שלום",
            "Ünïcödé 🎉",
            "",
        ] {
            assert_eq!(single_line(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn multi_line_fields_keep_line_breaks_and_tabs_but_refuse_nul() {
        assert_eq!(multi_line("first\nsecond\r\n\tthird\u{2028}"), Ok(()));
        let e = multi_line("a\0b").unwrap_err();
        assert_eq!((e.what, e.at), ("a NUL character", 2));
        assert!(e.to_string().contains("U+0000"));
        assert!(multi_line("\u{202E}").is_err());
        assert!(multi_line("\u{1b}").is_err());
        assert!(multi_line("a\u{0B}b").is_err());
    }

    #[test]
    fn the_message_names_the_character_and_where_it_is() {
        assert_eq!(
            single_line("ab\ncd").unwrap_err().to_string(),
            "contains a line break (U+000A) at character 3; this field must be one line of \
             visible text"
        );
    }

    #[test]
    fn cleaned_text_shows_what_was_removed() {
        assert_eq!(
            cleaned("done\nYes: http://x", true),
            "done\\u{a}Yes: http://x"
        );
        assert_eq!(cleaned("line\nline", false), "line\nline");
        assert_eq!(cleaned("nul\0", false), "nul\\u{0}");
        assert_eq!(cleaned("plain", true), "plain");
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        assert_eq!(csv_cell("=cmd|' /C calc'!A0"), "\"'=cmd|' /C calc'!A0\"");
        assert_eq!(csv_cell("+1"), "\"'+1\"");
        assert_eq!(csv_cell("-2+3"), "\"'-2+3\"");
        assert_eq!(csv_cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_cell("\t=1"), "\"'\t=1\"");
        assert_eq!(csv_cell("\r=1"), "\"'\r=1\"");
        assert_eq!(csv_cell("Adobe, Inc."), "\"Adobe, Inc.\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("Acrobat"), "Acrobat");
        assert_eq!(csv_cell("a=b"), "a=b");
    }

    #[test]
    fn an_address_is_exactly_one_plain_mailbox() {
        for ok in [
            "ann@corp.example",
            "a.b+tag@mail.corp.example",
            "o'neil@x.io",
        ] {
            assert_eq!(email(ok), Ok(()), "{ok}");
        }
        for bad in [
            "victim@corp.example,attacker@evil.example",
            "\"a@b\"@evil.com",
            "Ann <ann@corp.example>",
            "ann@[127.0.0.1]",
            "ann@localhost",
            "ann(comment)@corp.example",
            "ann@corp.example\nBcc: x@evil.example",
            "ann @corp.example",
            "ann",
            "@corp.example",
            "ann@",
            "",
            "ann@corp..example",
            "ann@.corp.example",
            "ann@corp.example.",
        ] {
            assert!(email(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
