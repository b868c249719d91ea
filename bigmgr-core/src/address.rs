//! Host addresses: what bigmgr accepts as the address a host's services bind to and other hosts
//! reach it at — an IP address or a DNS host name (RFC 1123), nothing else.
//!
//! Addresses travel into every unit's config files, scripts' environments and peers' templates
//! on *other* hosts, so the rule is strict and lives here once: every way an address enters
//! (REST, an agent's registration, the quickstart, config properties of type `address`) checks
//! it with [`check_address`]. What passes contains only ASCII letters, digits, `.`, `-` and,
//! for IPv6, `:` — no character any shell, config format or URL treats specially.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The longest DNS name (RFC 1035 §2.3.4, without the trailing dot).
pub const MAX_NAME_LEN: usize = 253;
/// The longest label of a DNS name.
const MAX_LABEL_LEN: usize = 63;

/// Addresses an attacker would try, each one refused by [`check_address`] for a reason of its
/// own (shell syntax, quotes, a path, white space, a line break, nothing): for the tests of each
/// way an address enters, which must all refuse them.
pub const HOSTILE_EXAMPLES: &[&str] = &[
    "$(touch /tmp/bigmgr-pwned)",
    "`id`",
    "x';id;'",
    "x\";id;\"",
    "../../etc/passwd",
    "a b",
    "a\nb",
    "",
];

/// Checks that `address` is an IPv4 address (dotted quad), an IPv6 address, or a DNS host name:
/// labels of 1–63 letters, digits and `-` (not at either end) separated by `.`, at most 253
/// characters, the last label not all digits (so `1.2.3.999` is neither). The error says what
/// is wrong, quoting the value in Rust's escaped form (so it can be shown anywhere), for
/// callers to put behind the field it came from.
pub fn check_address(address: &str) -> std::result::Result<(), String> {
    let shown = quoted(address);
    if address.is_empty() {
        return Err("an address is required: give an IP address or a DNS host name".into());
    }
    if address.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if address.contains(':') {
        return match address.parse::<Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(format!(
                "{shown} is not an IP address (IPv6 without brackets or zone, e.g. fd00::1) \
                 nor a DNS host name"
            )),
        };
    }
    if address.len() > MAX_NAME_LEN {
        return Err(format!(
            "{} is not an address: a DNS name has at most {MAX_NAME_LEN} characters, this one has {}",
            quoted(&address.chars().take(40).collect::<String>()),
            address.len()
        ));
    }
    if let Some(bad) = address
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "{shown} is not an address: {} is not allowed; an address is an IP address or a DNS \
             host name of letters, digits, '-' and '.'",
            quoted(&bad.to_string())
        ));
    }
    let labels: Vec<&str> = address.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(format!(
                "{shown} is not an address: it has an empty label (a leading, trailing or \
                 doubled '.')"
            ));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "{shown} is not an address: the label '{label}' is longer than {MAX_LABEL_LEN} \
                 characters"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "{shown} is not an address: the label '{label}' starts or ends with '-'"
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "{shown} is not an address: it looks like an IPv4 address but is not one (four \
             numbers 0-255 without leading zeros), and a DNS name cannot end in a number"
        ));
    }
    Ok(())
}

/// `s` in double quotes with Rust's escapes, for error messages.
fn quoted(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ips_and_host_names() {
        for ok in [
            "127.0.0.2",
            "10.0.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1:2",
            "2001:db8::8a2e:370:7334",
            "h1",
            "node-1.example.com",
            "a.b-c.d9",
            "xn--bcher-kva.example",
            "1host",
            &"a".repeat(63),
            &format!(
                "{}.{}.{}.{}",
                "a".repeat(63),
                "b".repeat(63),
                "c".repeat(63),
                "d".repeat(61)
            ),
        ] {
            assert_eq!(check_address(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        let others = [
            " ",
            "$(touch /tmp/x)",
            "a\0b",
            "h1;reboot",
            "-h1",
            "h1-",
            "a..b",
            ".a",
            "a.",
            "1.2.3.999",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "[::1]",
            "fe80::1%eth0",
            "::g",
            "ünïcode",
            "h_1",
            "h1:80",
            &"a".repeat(64),
            &"a.".repeat(150),
            &"x".repeat(300),
        ];
        for bad in HOSTILE_EXAMPLES.iter().copied().chain(others) {
            let e = check_address(bad).expect_err(bad);
            assert!(!e.is_empty());
        }
    }

    #[test]
    fn errors_quote_the_value_safely() {
        let e = check_address("a\nb$(id)").unwrap_err();
        assert!(e.contains(r#""a\nb$(id)""#), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = check_address(&"x".repeat(300)).unwrap_err();
        assert!(e.contains("300"), "{e}");
        assert!(e.len() < 200, "{e}");
    }
}
