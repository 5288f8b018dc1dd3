//! JSON byte for byte as runc's Go writes it: serde's output with `<`, `>`, `&`, U+2028 and
//! U+2029 escaped, as Go's encoding/json does by default. Outside strings serde's output holds
//! none of these characters, so replacing them over the whole text changes only strings.
use serde::Serialize;

/// `json.Marshal`: one line.
pub fn to_string<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<String> {
    serde_json::to_string(v).map(escape)
}

/// `json.MarshalIndent(v, "", "  ")`.
pub fn to_string_pretty<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<String> {
    serde_json::to_string_pretty(v).map(escape)
}

fn escape(s: String) -> String {
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn escapes_as_go_does() {
        let m: BTreeMap<&str, &str> = [("b", "x<y>&z"), ("a", "\u{2028}\"")].into();
        assert_eq!(
            to_string(&m).unwrap(),
            r#"{"a":"\u2028\"","b":"x\u003cy\u003e\u0026z"}"#
        );
        assert_eq!(to_string("plain").unwrap(), r#""plain""#);
        let back: BTreeMap<String, String> =
            serde_json::from_str(&to_string_pretty(&m).unwrap()).unwrap();
        assert_eq!(back["b"], "x<y>&z");
    }
}
