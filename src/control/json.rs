//! A small JSON reader for the relay's replies. serde_json is only a dev-dependency, and the
//! client needs little: a few fields of one object per line, and the raw text of the stats
//! object, passed on exactly as the relay wrote it.

/// A parsed JSON value that remembers the text it came from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Value<'a> {
    pub(crate) raw: &'a str,
    pub(crate) kind: Kind<'a>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind<'a> {
    Null,
    Bool(bool),
    /// Kept as written: the caller decides whether it wants an integer or a float.
    Number(&'a str),
    String(String),
    Array(Vec<Value<'a>>),
    Object(Vec<(String, Value<'a>)>),
}

impl<'a> Value<'a> {
    /// The member `key` of an object; `None` for a missing key or a value that is no object.
    pub(crate) fn get(&self, key: &str) -> Option<&Value<'a>> {
        match &self.kind {
            Kind::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(text) => Some(text),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self.kind {
            Kind::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self.kind {
            Kind::Number(text) => text.parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self.kind {
            Kind::Number(text) => text.parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> Option<&[Value<'a>]> {
        match &self.kind {
            Kind::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// Parses one JSON value, which must fill `text` but for surrounding white space.
pub(crate) fn parse(text: &str) -> Result<Value<'_>, String> {
    let mut reader = Reader { text, at: 0 };
    let value = reader.value(0)?;
    reader.skip_space();
    if reader.at != text.len() {
        return Err(reader.error("text after the value"));
    }
    Ok(value)
}

/// Deeper nesting than a stats record ever has is refused rather than risk the stack.
const MAX_DEPTH: usize = 32;

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, what: &str) -> String {
        format!("not JSON: {what} at byte {}", self.at)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.skip_space();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected '{}'", byte as char)))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, String> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        self.skip_space();
        let start = self.at;
        let kind = match self.peek() {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Kind::String(self.string()?),
            Some(b't') => self.literal("true", Kind::Bool(true))?,
            Some(b'f') => self.literal("false", Kind::Bool(false))?,
            Some(b'n') => self.literal("null", Kind::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(self.error("expected a value")),
        };
        Ok(Value {
            raw: &self.text[start..self.at],
            kind,
        })
    }

    fn literal(&mut self, word: &str, kind: Kind<'a>) -> Result<Kind<'a>, String> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(kind)
        } else {
            Err(self.error("expected true, false or null"))
        }
    }

    fn number(&mut self) -> Result<Kind<'a>, String> {
        let start = self.at;
        let digits = |r: &mut Self| {
            let from = r.at;
            while matches!(r.peek(), Some(b'0'..=b'9')) {
                r.at += 1;
            }
            r.at > from
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let mut ok = digits(self);
        if ok && self.peek() == Some(b'.') {
            self.at += 1;
            ok = digits(self);
        }
        if ok && matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            ok = digits(self);
        }
        if !ok {
            return Err(self.error("malformed number"));
        }
        Ok(Kind::Number(&self.text[start..self.at]))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("expected four hex digits"))?;
        self.at += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.error("expected four hex digits"))
    }

    /// `\uXXXX`, with a surrogate pair read as one character.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if !self.text[self.at..].starts_with("\\u") {
                return Err(self.error("a lone surrogate"));
            }
            self.at += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(self.error("a lone surrogate"));
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| self.error("a lone surrogate"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut text = String::new();
        loop {
            let rest = &self.text[self.at..];
            let Some(c) = rest.chars().next() else {
                return Err(self.error("unterminated string"));
            };
            self.at += c.len_utf8();
            match c {
                '"' => return Ok(text),
                '\\' => {
                    let escape = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated string"))?;
                    self.at += 1;
                    text.push(match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.error("unknown escape")),
                    });
                }
                c if u32::from(c) < 0x20 => return Err(self.error("a control character")),
                c => text.push(c),
            }
        }
    }

    /// The items between `open` and `close`, separated by commas, each read by `item`.
    fn list(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        self.expect(open)?;
        self.skip_space();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(c) if c == close => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error(&format!("expected ',' or '{}'", close as char))),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Kind<'a>, String> {
        let mut items = Vec::new();
        self.list(b'[', b']', |r| {
            items.push(r.value(depth + 1)?);
            Ok(())
        })?;
        Ok(Kind::Array(items))
    }

    fn object(&mut self, depth: usize) -> Result<Kind<'a>, String> {
        let mut members = Vec::new();
        self.list(b'{', b'}', |r| {
            r.skip_space();
            let key = r.string()?;
            r.expect(b':')?;
            members.push((key, r.value(depth + 1)?));
            Ok(())
        })?;
        Ok(Kind::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_gives_its_fields_and_the_raw_stats() {
        let line = r#"{"ok":true,"pid":42,"stats":{"event":"query","elapsed_s":0.500000,"inputs":[{"name":"a"}]},"human":"bpipe: 1 B"}"#;
        let reply = parse(line).unwrap();
        assert_eq!(reply.get("ok").and_then(Value::as_bool), Some(true));
        assert_eq!(reply.get("pid").and_then(Value::as_u64), Some(42));
        assert_eq!(
            reply.get("human").and_then(Value::as_str),
            Some("bpipe: 1 B")
        );
        let stats = reply.get("stats").unwrap();
        assert_eq!(
            stats.raw,
            r#"{"event":"query","elapsed_s":0.500000,"inputs":[{"name":"a"}]}"#
        );
        assert_eq!(stats.get("elapsed_s").and_then(Value::as_f64), Some(0.5));
        let inputs = stats.get("inputs").and_then(Value::as_array).unwrap();
        assert_eq!(inputs[0].get("name").and_then(Value::as_str), Some("a"));
        assert_eq!(reply.get("missing"), None);
    }

    #[test]
    fn every_kind_of_value_parses() {
        let value =
            parse(r#" [null, false, -1.5e3, 0, "", {}, [], {"a": [1, {"b": true}]}] "#).unwrap();
        let items = value.as_array().unwrap();
        assert_eq!(items[0].kind, Kind::Null);
        assert_eq!(items[1].as_bool(), Some(false));
        assert_eq!(items[2].as_f64(), Some(-1500.0));
        assert_eq!(items[3].as_u64(), Some(0));
        assert_eq!(items[4].as_str(), Some(""));
        assert_eq!(items[5].kind, Kind::Object(Vec::new()));
        assert_eq!(items[6].as_array(), Some(&[][..]));
        assert_eq!(items[7].raw, r#"{"a": [1, {"b": true}]}"#);
    }

    #[test]
    fn escapes_are_decoded() {
        let value = parse(r#""a\"b\\c\/\n\t\u00e9\ud83d\ude00é""#).unwrap();
        assert_eq!(value.as_str(), Some("a\"b\\c/\n\té😀é"));
    }

    #[test]
    fn what_is_not_json_is_refused() {
        for bad in [
            "",
            "hello",
            "{",
            r#"{"a"}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            "[1 2]",
            "01x",
            "-",
            "1.",
            "1e",
            r#""unterminated"#,
            r#""\x""#,
            r#""\ud83d""#,
            "\"a\u{1}b\"",
            "tru",
            &"[".repeat(100),
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.starts_with("not JSON: "), "{bad:?}: {error}");
        }
    }

    #[test]
    fn a_number_is_an_integer_only_when_written_as_one() {
        assert_eq!(parse("12").unwrap().as_u64(), Some(12));
        assert_eq!(parse("12.0").unwrap().as_u64(), None);
        assert_eq!(parse("12.0").unwrap().as_f64(), Some(12.0));
        assert_eq!(parse("\"12\"").unwrap().as_u64(), None);
    }
}
