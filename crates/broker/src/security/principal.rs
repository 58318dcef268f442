//! Who a connection is: Kafka's principal (`User:alice`), and the rules that turn a client
//! certificate's subject into one (`ssl.principal.mapping.rules`).
//!
//! A plaintext connection, and a TLS connection without a client certificate, is
//! `User:ANONYMOUS`. A SASL connection is the user it authenticated as. A TLS connection
//! with a client certificate is the certificate's subject in RFC 2253 form
//! (`CN=alice,OU=eng,O=Example`), passed through the mapping rules.

use std::fmt;

use regex::Regex;

/// Kafka's principal type for users.
pub const USER_TYPE: &str = "User";
/// The principal of a connection that proved nothing.
pub const ANONYMOUS: &str = "ANONYMOUS";
/// Most mapping rules one broker takes.
pub const MAPPING_RULES_MAX: usize = 64;

/// Kafka's `KafkaPrincipal`: a type and a name, kept written as `User:alice`, the form
/// ACLs and `super.users` compare against, so checking one allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    text: String,
    /// Where the `:` between type and name is.
    colon: usize,
}

impl Principal {
    pub fn new(principal_type: &str, name: &str) -> Principal {
        Principal {
            text: format!("{principal_type}:{name}"),
            colon: principal_type.len(),
        }
    }

    pub fn user(name: impl Into<String>) -> Principal {
        Principal::new(USER_TYPE, &name.into())
    }

    pub fn principal_type(&self) -> &str {
        &self.text[..self.colon]
    }

    pub fn name(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    /// `User:alice`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn anonymous() -> Principal {
        Principal::user(ANONYMOUS)
    }

    /// Parses `Type:name`, as in `super.users` and ACLs.
    pub fn parse(s: &str) -> Option<Principal> {
        let (principal_type, name) = s.split_once(':')?;
        if principal_type.is_empty() || name.is_empty() {
            return None;
        }
        Some(Principal::new(principal_type, name))
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A case change applied after a rule's replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

#[derive(Debug, Clone)]
enum Rule {
    /// The subject unchanged.
    Default,
    Replace {
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

/// `ssl.principal.mapping.rules`: the first rule whose pattern matches the whole subject
/// decides the name.
#[derive(Debug, Clone)]
pub struct PrincipalMapping {
    rules: Vec<Rule>,
}

impl Default for PrincipalMapping {
    fn default() -> PrincipalMapping {
        PrincipalMapping {
            rules: vec![Rule::Default],
        }
    }
}

/// Reads up to the next `/` not escaped by a backslash; returns the text (escapes kept,
/// as the regex needs them) and the rest after the slash.
fn until_slash(s: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '/' if !escaped => return Some((&s[..i], &s[i + 1..])),
            _ => escaped = false,
        }
    }
    None
}

/// Java's `$1` group references become the regex crate's `${1}`, so `$1abc` keeps
/// meaning group 1 followed by "abc".
fn java_replacement(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if next == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(next);
                    }
                }
            }
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    out.push(d);
                    chars.next();
                }
                out.push('}');
            }
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

impl PrincipalMapping {
    /// Parses Kafka's syntax: `RULE:pattern/replacement/[LU]` and `DEFAULT`, separated by
    /// commas (a pattern may contain commas of its own).
    pub fn parse(rules: &str) -> Result<PrincipalMapping, String> {
        let mut parsed = Vec::new();
        let mut rest = rules.trim();
        while !rest.is_empty() {
            if parsed.len() == MAPPING_RULES_MAX {
                return Err(format!(
                    "at most {MAPPING_RULES_MAX} principal mapping rules are allowed"
                ));
            }
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                parsed.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let bad = || {
                    format!("principal mapping rule '{rest}' must be RULE:pattern/replacement/ with an optional L or U after it")
                };
                let (pattern, after) = until_slash(after).ok_or_else(bad)?;
                let (replacement, after) = until_slash(after).ok_or_else(bad)?;
                let (case, after) = match after.chars().next() {
                    Some('L') => (Case::Lower, &after[1..]),
                    Some('U') => (Case::Upper, &after[1..]),
                    _ => (Case::Keep, after),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                    format!("principal mapping rule pattern '{pattern}' is not a regular expression: {e}")
                })?;
                parsed.push(Rule::Replace {
                    pattern,
                    replacement: java_replacement(replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(format!(
                    "principal mapping rules must be DEFAULT or RULE:pattern/replacement/, not '{rest}'"
                ));
            }
            rest = rest.trim_start();
            rest = match rest.strip_prefix(',') {
                Some(after) => after.trim_start(),
                None if rest.is_empty() => rest,
                None => {
                    return Err(format!(
                        "expected ',' before '{rest}' in the principal mapping rules"
                    ))
                }
            };
        }
        if parsed.is_empty() {
            return Err("the principal mapping rules are empty: use DEFAULT".to_string());
        }
        Ok(PrincipalMapping { rules: parsed })
    }

    /// The principal name for a certificate subject, or None when no rule applies (Kafka
    /// then refuses the connection).
    pub fn map(&self, subject: &str) -> Option<String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Some(subject.to_string()),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    if pattern.is_match(subject) {
                        let name = pattern.replace(subject, replacement.as_str()).into_owned();
                        return Some(match case {
                            Case::Keep => name,
                            Case::Lower => name.to_lowercase(),
                            Case::Upper => name.to_uppercase(),
                        });
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_print_and_parse_as_kafka_writes_them() {
        // Goal: `User:alice` round-trips; a string without a type is refused.
        let p = Principal::parse("User:CN=alice,O=x").unwrap();
        assert_eq!(p.principal_type(), "User");
        assert_eq!(p.name(), "CN=alice,O=x");
        assert_eq!(p.as_str(), "User:CN=alice,O=x");
        assert_eq!(p.to_string(), "User:CN=alice,O=x");
        assert!(Principal::parse("alice").is_none());
        assert_eq!(Principal::anonymous().to_string(), "User:ANONYMOUS");
    }

    #[test]
    fn mapping_rules_apply_in_order_with_case_changes() {
        // Goal: Kafka's documented examples map as Kafka maps them.
        let m = PrincipalMapping::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L, DEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.map("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("serviceuser")
        );
        assert_eq!(
            m.map("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("adminuser@admin")
        );
        assert_eq!(m.map("OU=x,CN=Bob.Smith,O=y").as_deref(), Some("bob.smith"));
        assert_eq!(m.map("O=none").as_deref(), Some("O=none"));
        let strict = PrincipalMapping::parse("RULE:^CN=([a-z]+)$/$1/U").unwrap();
        assert_eq!(strict.map("CN=bob").as_deref(), Some("BOB"));
        assert_eq!(strict.map("CN=bob,O=x"), None);
        assert_eq!(
            PrincipalMapping::default().map("CN=a").as_deref(),
            Some("CN=a")
        );
        assert!(PrincipalMapping::parse("RULE:^CN=(.*$/$1/").is_err());
        assert!(PrincipalMapping::parse("NOPE").is_err());
        assert!(PrincipalMapping::parse("").is_err());
    }
}
