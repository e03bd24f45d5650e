//! The `Sql` analysis: one read-only query over the run's inputs.
//!
//! The text is parsed here once, checked to be a single query, and that
//! very statement is planned: there is no second parse that could read the
//! text differently. The plan is then verified with DataFusion's
//! [`SQLOptions`] (no DDL, DML or statements) as a second line of defence,
//! e.g. against `SELECT ... INTO`, which parses as a query but plans as
//! `CREATE TABLE`.

use std::ops::ControlFlow;

use datafusion::{
    common::DataFusionError,
    dataframe::DataFrame,
    execution::context::SQLOptions,
    prelude::{SessionConfig, SessionContext},
    sql::{
        parser::{DFParserBuilder, Statement},
        resolve::resolve_table_references,
        sqlparser::{
            ast::{Expr, Query, SetExpr, Statement as SqlStatement, Visit, Visitor},
            parser::ParserError,
        },
    },
};

use super::EngineError;

/// How deeply the parser may nest parentheses, expressions and subqueries
/// while it recurses: enough for any hand-written or generated query, and
/// far below what would exhaust a thread's stack.
pub(crate) const RECURSION_LIMIT: usize = 50;

/// How deep the parsed expression tree may be. The parser reads a chain of
/// binary operators (`a + b + c ...`, `x = 1 OR x = 2 OR ...`) without
/// recursing, but the tree it builds is as deep as the chain is long, and
/// DataFusion clones and walks expression trees recursively, some of it
/// without stack growth: a chain of a few thousand terms overflows a
/// thread's stack. Long lists belong in `IN (...)`.
pub(crate) const MAX_EXPRESSION_DEPTH: usize = 1000;

/// Plans `query` as a DataFrame over the session's tables.
pub(crate) async fn plan(
    ctx: &SessionContext,
    query: &str,
    max_bytes: usize,
) -> Result<DataFrame, EngineError> {
    check_length(query, max_bytes)?;
    let statement = parse(query)?;

    let state = ctx.state();
    // Report a missing table by name before the planner turns it into a
    // generic planning error. Quoted paths and URLs ('file:///etc/passwd')
    // are table names like any other, and no such table exists.
    for reference in state.resolve_table_references(&statement)? {
        if !ctx.table_exist(reference.clone()).unwrap_or(false) {
            return Err(EngineError::UnknownTable(reference.to_string()));
        }
    }

    let plan = state.statement_to_plan(statement).await?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| EngineError::InvalidQuery(e.strip_backtrace()))?;
    Ok(ctx.execute_logical_plan(plan).await?)
}

/// Checks what can be checked of `query` without its data, exactly as a
/// run would: its length, that it is one read-only query within the
/// nesting limits, and that every table it reads is one of `tables` (the
/// run's input names). Column names and types need the inputs' schemas
/// and are left to the run.
///
/// Recursive, like the parser and the drop of a deep expression tree: call
/// it through [`super::check_sql`], which gives it the stack the engine's
/// threads have.
pub(crate) fn check(query: &str, tables: &[String], max_bytes: usize) -> Result<(), EngineError> {
    check_length(query, max_bytes)?;
    let statement = parse(query)?;
    // The run's session resolves references the same way: identifiers
    // normalized (unquoted ones folded to lower case), bare names in the
    // default catalog and schema, where its inputs are registered.
    let config = SessionConfig::new();
    let catalog = &config.options().catalog;
    let normalize = config.options().sql_parser.enable_ident_normalization;
    let (references, _ctes) = resolve_table_references(&statement, normalize)?;
    for reference in references {
        let resolved = reference
            .clone()
            .resolve(&catalog.default_catalog, &catalog.default_schema);
        let known = *resolved.catalog == *catalog.default_catalog
            && *resolved.schema == *catalog.default_schema
            && tables.iter().any(|t| *t == *resolved.table);
        if !known {
            return Err(EngineError::UnknownTable(reference.to_string()));
        }
    }
    Ok(())
}

fn check_length(query: &str, max_bytes: usize) -> Result<(), EngineError> {
    if query.len() > max_bytes {
        return Err(EngineError::InvalidQuery(format!(
            "the query is {} bytes long; at most {max_bytes} are allowed",
            query.len()
        )));
    }
    Ok(())
}

/// Parses `query`, accepting exactly one query statement.
fn parse(query: &str) -> Result<Statement, EngineError> {
    let mut statements = DFParserBuilder::new(query)
        .with_recursion_limit(RECURSION_LIMIT)
        .build()?
        .parse_statements()
        .map_err(|error| match error {
            DataFusionError::SQL(ref parse, _)
                if matches!(**parse, ParserError::RecursionLimitExceeded) =>
            {
                EngineError::InvalidQuery(format!(
                    "the query nests more than {RECURSION_LIMIT} levels deep \
                     (parentheses, subqueries, function calls)"
                ))
            }
            other => other.into(),
        })?;
    let statement = match (statements.pop_front(), statements.len()) {
        (Some(statement), 0) => statement,
        (None, _) => return Err(EngineError::InvalidQuery("the query is empty".into())),
        (Some(_), more) => {
            return Err(EngineError::InvalidQuery(format!(
                "exactly one statement is allowed, got {}",
                more + 1
            )));
        }
    };
    let rejected = match &statement {
        Statement::Statement(inner) => match inner.as_ref() {
            SqlStatement::Query(query) => match rejected_query(query) {
                None => {
                    check_depth(inner)?;
                    return Ok(statement);
                }
                Some(what) => what.to_owned(),
            },
            other => leading_keywords(&other.to_string()),
        },
        Statement::CreateExternalTable(_) => "CREATE EXTERNAL TABLE".into(),
        Statement::CopyTo(_) => "COPY".into(),
        Statement::Explain(_) => "EXPLAIN".into(),
        Statement::Reset(_) => "RESET".into(),
    };
    Err(EngineError::InvalidQuery(format!(
        "only a read-only query (SELECT, WITH or VALUES) is allowed, not {rejected}"
    )))
}

/// Rejects a statement whose expressions nest deeper than
/// [`MAX_EXPRESSION_DEPTH`]. The walk itself recurses, but stops at the
/// limit.
fn check_depth(statement: &SqlStatement) -> Result<(), EngineError> {
    struct Depth {
        current: usize,
    }
    impl Visitor for Depth {
        type Break = ();
        fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.current += 1;
            if self.current > MAX_EXPRESSION_DEPTH {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.current -= 1;
            ControlFlow::Continue(())
        }
    }
    match statement.visit(&mut Depth { current: 0 }) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(EngineError::InvalidQuery(format!(
            "expressions are nested more than {MAX_EXPRESSION_DEPTH} deep \
             (a long chain of AND, OR or arithmetic counts as nesting; use IN (...) for lists)"
        ))),
    }
}

/// What makes a query statement not read-only, if anything.
fn rejected_query(query: &Query) -> Option<&'static str> {
    match query.body.as_ref() {
        SetExpr::Insert(_) => Some("INSERT"),
        SetExpr::Update(_) => Some("UPDATE"),
        SetExpr::Delete(_) => Some("DELETE"),
        SetExpr::Merge(_) => Some("MERGE"),
        SetExpr::Select(select) if select.into.is_some() => Some("SELECT INTO"),
        _ => None,
    }
}

/// The statement's kind for a message: its first word, two for CREATE,
/// DROP and ALTER (`CREATE TABLE`).
fn leading_keywords(statement: &str) -> String {
    let mut words = statement.split_whitespace().map(str::to_uppercase);
    let first = words.next().unwrap_or_default();
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" => match words.next() {
            Some(second) => format!("{first} {second}"),
            None => first,
        },
        _ => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(query: &str) -> String {
        match parse(query) {
            Err(EngineError::InvalidQuery(message)) => message,
            other => panic!("expected a rejection of {query:?}, got {other:?}"),
        }
    }

    #[test]
    fn select_with_and_values_are_accepted() {
        for query in [
            "SELECT 1",
            "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT * FROM t",
            "VALUES (1), (2)",
            "SELECT 1 UNION SELECT 2",
        ] {
            assert!(parse(query).is_ok(), "{query}");
        }
    }

    #[test]
    fn statements_other_than_queries_are_named_in_the_rejection() {
        assert!(rejection("CREATE TABLE t (a INT)").contains("CREATE TABLE"));
        assert!(rejection("INSERT INTO t VALUES (1)").contains("INSERT"));
        assert!(rejection("COPY t TO '/tmp/x.parquet'").contains("COPY"));
        assert!(rejection("EXPLAIN ANALYZE SELECT 1").contains("EXPLAIN"));
        assert!(rejection("SET datafusion.execution.batch_size = 1").contains("SET"));
        assert!(
            rejection("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc'")
                .contains("CREATE EXTERNAL TABLE")
        );
        assert!(rejection("DROP TABLE t").contains("DROP TABLE"));
        assert!(rejection("SELECT * INTO t2 FROM t").contains("SELECT INTO"));
    }

    #[test]
    fn a_chain_of_a_thousand_and_one_additions_is_too_deep() {
        let ok = format!("SELECT a{} FROM t", " + 1".repeat(500));
        assert!(parse(&ok).is_ok());
        let deep = format!("SELECT a{} FROM t", " + 1".repeat(MAX_EXPRESSION_DEPTH + 1));
        assert!(rejection(&deep).contains("nested more than"));
    }

    #[test]
    fn nesting_past_the_parser_limit_is_named() {
        let deep = format!("SELECT {}1{}", "(".repeat(60), ")".repeat(60));
        assert!(rejection(&deep).contains("nests more than 50 levels"));
    }

    #[test]
    fn two_statements_are_rejected() {
        assert!(rejection("SELECT 1; SELECT 2").contains("exactly one statement"));
    }

    #[test]
    fn an_empty_query_is_rejected() {
        assert!(rejection("  ").contains("empty"));
    }

    fn checked(query: &str) -> Result<(), EngineError> {
        check(query, &["t".to_owned(), "Mixed".to_owned()], 10_000)
    }

    #[test]
    fn a_check_accepts_the_inputs_qualified_or_not_and_ctes() {
        for query in [
            "SELECT * FROM t",
            "SELECT * FROM public.t JOIN datafusion.public.t u ON true",
            "SELECT * FROM \"Mixed\"",
            "WITH x AS (SELECT * FROM t) SELECT * FROM x",
            "SELECT 1",
        ] {
            assert!(checked(query).is_ok(), "{query}: {:?}", checked(query));
        }
    }

    #[test]
    fn a_check_names_tables_that_are_not_inputs() {
        for (query, table) in [
            ("SELECT * FROM t JOIN secrets USING (a)", "secrets"),
            ("SELECT * FROM other.t", "other.t"),
            ("SELECT * FROM Mixed", "mixed"),
            ("SELECT * FROM 'file:///etc/passwd'", "/etc/passwd"),
            ("SELECT * FROM read_parquet('/etc/passwd')", "read_parquet"),
        ] {
            match checked(query) {
                Err(EngineError::UnknownTable(name)) => {
                    assert!(name.contains(table), "{query}: {name}")
                }
                other => panic!("{query}: expected an unknown table, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_check_rejects_what_a_run_rejects_before_planning() {
        assert!(matches!(
            checked("DROP TABLE t"),
            Err(EngineError::InvalidQuery(_))
        ));
        let long = format!("SELECT * FROM t WHERE a IN ({})", vec!["1"; 5000].join(","));
        assert!(
            matches!(checked(&long), Err(EngineError::InvalidQuery(m)) if m.contains("at most 10000"))
        );
    }
}
