//! Config documentation: every key's doc comment, kept by the `config_struct!`
//! macro next to the field it documents, and the printer that turns a config
//! value plus those docs into a commented TOML file.

use std::fmt::Write as _;

/// The documentation of one config key, taken from its doc comment.
#[derive(Debug, Clone, Copy)]
pub struct KeyDoc {
    /// The key as it appears in TOML.
    pub key: &'static str,
    /// The field's doc comment, one entry per line.
    pub doc: &'static [&'static str],
    /// The keys of a nested section (empty for a plain value).
    pub section: fn() -> &'static [KeyDoc],
}

/// A config type that can list its keys with their documentation.
///
/// Plain value types list no keys; structs made by `config_struct!` list
/// their fields.
pub trait Documented {
    /// The keys of this type, in declaration order.
    fn keys() -> &'static [KeyDoc] {
        &[]
    }
}

macro_rules! plain_documented {
    ($($t:ty),* $(,)?) => { $(impl Documented for $t {})* };
}
plain_documented!(bool, u8, u16, u32, u64, usize, i32, i64, f64, String);
impl<T> Documented for Vec<T> {}
impl<T> Documented for Option<T> {}

/// Declares a config struct whose doc comments double as the comments of
/// the printed config file (one source of truth).
///
/// Every field is `name: Type = default`. The struct gets `Default`,
/// `Serialize`, `Deserialize` with `#[serde(default, deny_unknown_fields)]`
/// and [`Documented`].
#[macro_export]
macro_rules! config_struct {
    (
        $(#[doc = $sdoc:literal])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $(#[serde($($serde:tt)*)])*
                $fvis:vis $field:ident : $ty:ty = $default:expr
            ),* $(,)?
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        $vis struct $name {
            $(
                $(#[doc = $doc])*
                $(#[serde($($serde)*)])*
                $fvis $field: $ty,
            )*
        }

        impl ::core::default::Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }

        impl $crate::config::Documented for $name {
            fn keys() -> &'static [$crate::config::KeyDoc] {
                &[$(
                    $crate::config::KeyDoc {
                        key: stringify!($field),
                        doc: &[$($doc),*],
                        section: <$ty as $crate::config::Documented>::keys,
                    },
                )*]
            }
        }
    };
}

/// Renders `value` as a TOML file with each key preceded by its doc comment.
///
/// Plain keys come first, then one `[section]` per nested struct, so the
/// output is valid TOML that parses back to `value`.
pub fn to_commented_toml<T: serde::Serialize + Documented>(
    value: &T,
) -> Result<String, toml::ser::Error> {
    let table = toml::Table::try_from(value)?;
    let mut out = String::new();
    write_table(&mut out, &table, T::keys(), "");
    Ok(out)
}

fn write_doc(out: &mut String, doc: &[&str]) {
    for line in doc {
        let line = line.strip_prefix(' ').unwrap_or(line);
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            let _ = writeln!(out, "# {line}");
        }
    }
}

fn write_table(out: &mut String, table: &toml::Table, keys: &[KeyDoc], prefix: &str) {
    let is_section = |k: &KeyDoc| matches!(table.get(k.key), Some(toml::Value::Table(_)));
    for key in keys.iter().filter(|k| !is_section(k)) {
        let Some(value) = table.get(key.key) else {
            continue; // an Option that is None: nothing to print
        };
        write_doc(out, key.doc);
        let _ = writeln!(out, "{} = {value}\n", key.key);
    }
    for key in keys.iter().filter(|k| is_section(k)) {
        let Some(toml::Value::Table(sub)) = table.get(key.key) else {
            continue;
        };
        let path = if prefix.is_empty() {
            key.key.to_string()
        } else {
            format!("{prefix}.{}", key.key)
        };
        write_doc(out, key.doc);
        let _ = writeln!(out, "[{path}]\n");
        write_table(out, sub, (key.section)(), &path);
    }
}
