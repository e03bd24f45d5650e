//! What request schemas are made of beyond poem-openapi's own types:
//! [`Strict`], which rejects unknown fields where a derive cannot, and
//! [`Text`], a string that is only ever a JSON string.

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;

/// `T`, rejecting fields that `T` does not have. For types whose derive
/// cannot: the variants of [`Analysis`](super::Analysis) receive its `type` field, so they
/// cannot deny unknown fields themselves. In the spec it is `T` exactly.
///
/// A field is known when `T` writes it back: parsed and serialized again,
/// the value has every field `T` has (its optional fields must therefore
/// serialize as `null`, not be skipped) and none that it ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct Strict<T>(pub T);

impl<T: Type> Type for Strict<T> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_raw_value()
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        self.0.raw_element_iter()
    }
}

impl<T: ParseFromJSON + ToJSON> ParseFromJSON for Strict<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let given: Vec<String> = match &value {
            Some(Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let parsed = T::parse_from_json(value).map_err(ParseError::propagate)?;
        if let Some(Value::Object(known)) = parsed.to_json()
            && let Some(unknown) = given.iter().find(|f| !known.contains_key(*f))
        {
            return Err(ParseError::custom(format!("unknown field `{unknown}`.")));
        }
        Ok(Strict(parsed))
    }
}

impl<T: ToJSON> ToJSON for Strict<T> {
    fn to_json(&self) -> Option<Value> {
        self.0.to_json()
    }
}

/// A JSON string, and only a string. poem-openapi's `String` also takes a
/// number or a boolean and turns it into text, so `"query": 1` would reach
/// the SQL check as `1` and be refused for the wrong reason; request fields
/// use this instead and answer 400 naming the field. In the spec it is
/// `string`, exactly like `String`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Text(pub String);

impl Type for Text {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        String::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(text) => Ok(Text(text)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for Text {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

impl std::ops::Deref for Text {
    type Target = String;

    fn deref(&self) -> &String {
        &self.0
    }
}

impl From<Text> for String {
    fn from(text: Text) -> String {
        text.0
    }
}
