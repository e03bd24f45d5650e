//! The operations' security scheme: an HTTP bearer key, checked before any
//! other parameter of the request is read.
//!
//! An operation takes an [`Authorized<N>`] as its first parameter, `N`
//! naming the scope it needs ([`Read`], [`Write`], [`Admin`], or
//! [`Authenticated`] for any valid key). poem-openapi then declares the
//! `bearerAuth` scheme in the spec and the operation's `security`, so
//! generated clients take a token; and the request is refused, before its
//! body or parameters are parsed, with a 401 (no, malformed, unknown,
//! expired or revoked key, with `WWW-Authenticate`) or a 403 (the key
//! lacks the scope), both problem details from [`crate::problem`].
//!
//! The application authenticates every `/v1` request before routing it
//! ([`authenticate_v1`]): a request without a valid key is answered 401
//! before any of its body is read, whatever the operation, and the
//! operation's [`Authorized`] then only checks the scope.

use std::{marker::PhantomData, ops::Deref, sync::Arc};

use poem::{Endpoint, IntoResponse, Request, RequestBody, Response, http::header::AUTHORIZATION};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaSecurityScheme, Registry},
};

use super::{Auth, AuthError, Caller, SECURITY_SCHEME, Scope};
use crate::problem::ApiError;

/// The scope an operation needs.
pub trait Need: Send + Sync + 'static {
    /// The scope, or `None` for any valid key.
    const SCOPE: Option<Scope>;
}

/// Needs the `read` scope: every `GET`.
#[derive(Debug)]
pub struct Read;

/// Needs the `write` scope: uploads, appends, submits, cancels, deletes.
#[derive(Debug)]
pub struct Write;

/// Needs the `admin` scope: key management.
#[derive(Debug)]
pub struct Admin;

/// Needs a valid key, whatever its scopes (the operation checks them
/// itself).
#[derive(Debug)]
pub struct Authenticated;

impl Need for Read {
    const SCOPE: Option<Scope> = Some(Scope::Read);
}

impl Need for Write {
    const SCOPE: Option<Scope> = Some(Scope::Write);
}

impl Need for Admin {
    const SCOPE: Option<Scope> = Some(Scope::Admin);
}

impl Need for Authenticated {
    const SCOPE: Option<Scope> = None;
}

/// A request authenticated by its key, which has the scope `N` names.
#[derive(Debug)]
pub struct Authorized<N: Need> {
    /// Who the request acts for.
    pub caller: Caller,
    need: PhantomData<N>,
}

impl<N: Need> Deref for Authorized<N> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

/// The key of an `Authorization` header's value: `Bearer <key>` (the
/// scheme's name in any case). Only the presence and the shape of the
/// header are checked here, not the key.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, AuthError> {
    let value = authorization.ok_or(AuthError::MissingKey)?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or(AuthError::MalformedKey)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MalformedKey);
    }
    Ok(token.trim_start_matches(' '))
}

/// Who sends `request`, by its `Authorization` header.
async fn authenticate(auth: &Auth, request: &Request) -> Result<Caller, ApiError> {
    let mut values = request.headers().get_all(AUTHORIZATION).iter();
    let header = match (values.next(), values.next()) {
        (None, _) => None,
        // Two keys: which one would act is anyone's guess.
        (Some(_), Some(_)) => return Err(AuthError::MalformedKey.into()),
        (Some(value), None) => Some(value.to_str().map_err(|_| AuthError::MalformedKey)?),
    };
    let caller = auth.authenticate(header).await.inspect_err(|e| {
        // The error names a key by its display prefix only.
        tracing::debug!("refused a request: {e}");
    })?;
    Ok(caller)
}

/// Authenticates every request under `/v1` (`EndpointExt::around`, with the
/// application's [`Auth`]): one without a valid key is answered 401 at
/// once, before its body is read; the caller of one with a valid key goes
/// to the operation in the request's extensions, where [`Authorized`]
/// finds it.
pub async fn authenticate_v1<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    auth: &Auth,
) -> poem::Result<Response> {
    let path = req.uri().path();
    if path == "/v1" || path.starts_with("/v1/") {
        match authenticate(auth, &req).await {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
            }
            Err(e) => return Ok(e.into_problem_response(None)),
        }
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

/// The caller of `request`, refused unless it has `scope`.
async fn authorize(request: &Request, scope: Option<Scope>) -> Result<Caller, ApiError> {
    let caller = match request.extensions().get::<Caller>() {
        Some(caller) => caller.clone(),
        // Served without `authenticate_v1` in front: authenticate here.
        None => {
            let auth = request.data::<Auth>().ok_or_else(|| {
                ApiError::Internal("the application serves operations without its Auth".to_owned())
            })?;
            authenticate(auth, request).await?
        }
    };
    if let Some(scope) = scope {
        caller.require(scope).inspect_err(|e| {
            tracing::debug!("refused a request: {e}");
        })?;
    }
    Ok(caller)
}

impl<'a, N: Need> ApiExtractor<'a> for Authorized<N> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SECURITY_SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "An API key, `crk_` and 32 letters and digits, sent as \
                     `Authorization: Bearer <key>`. Each key belongs to one tenant and has \
                     scopes: `read` (every GET), `write` (uploads, appends, submits, cancels, \
                     deletes), `admin` (the tenant's keys, fleet-wide queue numbers); each \
                     operation says which it needs.",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: Some("crk_<32 letters and digits>"),
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SECURITY_SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match authorize(request, N::SCOPE).await {
            Ok(caller) => Ok(Authorized {
                caller,
                need: PhantomData,
            }),
            // The whole answer, problem body and challenge header, as
            // problem.rs writes it; the application passes it on as is.
            Err(e) => Err(poem::Error::from_response(e.into_problem_response(None))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_a_bearer_header_carries_a_key() {
        assert!(matches!(bearer_token(None), Err(AuthError::MissingKey)));
        for bad in ["", "Bearer", "Basic abc", "crk_abc", "Token crk_abc"] {
            assert!(
                matches!(bearer_token(Some(bad)), Err(AuthError::MalformedKey)),
                "{bad:?}"
            );
        }
        assert_eq!(bearer_token(Some("Bearer crk_abc")).unwrap(), "crk_abc");
        assert_eq!(bearer_token(Some("bearer  crk_abc ")).unwrap(), "crk_abc");
    }
}
