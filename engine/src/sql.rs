//! The `Sql` analysis: one read-only query over the run's inputs.
//!
//! The text is parsed here once, checked to be a single query, and that
//! very statement is planned: there is no second parse that could read the
//! text differently. The plan is then verified with DataFusion's
//! [`SQLOptions`] (no DDL, DML or statements) as a second line of defence,
//! e.g. against `SELECT ... INTO`, which parses as a query but plans as
//! `CREATE TABLE`.
//!
//! A cast does not show in DataFusion's column names (apache/datafusion
//! #18975), so `SELECT avg(x) AS a, avg(CAST(x AS DOUBLE)) AS b` puts two
//! aggregates named `avg(t.x)` in one plan node, which DataFusion refuses
//! even though the query aliases them. Such a query is planned a second
//! time with its casts named ([`NameCasts`]); every query that plans the
//! first time keeps its column names.

use std::{num::NonZeroUsize, ops::ControlFlow, sync::Arc};

use datafusion::{
    common::{DataFusionError, SchemaError, tree_node::TreeNode},
    dataframe::DataFrame,
    execution::{
        FunctionRegistry, SessionState,
        context::SQLOptions,
        disk_manager::{DiskManagerBuilder, DiskManagerMode},
        object_store::ObjectStoreUrl,
        runtime_env::RuntimeEnvBuilder,
    },
    logical_expr::{
        Expr as LogicalExpr, LogicalPlan,
        planner::{ExprPlanner, PlannerResult, RawAggregateExpr, RawWindowExpr},
    },
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

use super::{EngineConfig, EngineError, TableInput, execution::Stop, session, yielding};

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

    let plan = plan_statement(state, statement).await?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| EngineError::InvalidQuery(e.strip_backtrace()))?;
    Ok(ctx.execute_logical_plan(plan).await?)
}

/// Plans `statement`; if its plan would hold two expressions of one name,
/// plans it again with the casts in aggregate and window arguments named
/// ([`NameCasts`]). A clash that is not a cast's comes back from the
/// second attempt as the error to report.
async fn plan_statement(
    mut state: SessionState,
    statement: Statement,
) -> Result<LogicalPlan, DataFusionError> {
    match state.statement_to_plan(statement.clone()).await {
        Err(error) if is_name_clash(&error) => {
            // `state` is the run's copy: the session itself is unchanged.
            state.register_expr_planner(Arc::new(NameCasts))?;
            state.statement_to_plan(statement).await
        }
        other => other,
    }
}

/// Whether `error` is the refusal of a plan node whose expressions share a
/// name, which a cast (invisible in names) can cause.
fn is_name_clash(error: &DataFusionError) -> bool {
    match error.find_root() {
        DataFusionError::SchemaError(schema_error, _) => matches!(
            **schema_error,
            SchemaError::DuplicateUnqualifiedField { .. }
                | SchemaError::DuplicateQualifiedField { .. }
        ),
        // Window nodes check names themselves (LogicalPlanBuilder's
        // `validate_unique_names`).
        DataFusionError::Plan(message) => message.contains("require unique expression names"),
        _ => false,
    }
}

/// Names every aggregate or window argument that contains a cast by its
/// `Display` form, which shows the cast (`CAST(t.x AS Float64)`), so that
/// `avg(x)` and `avg(CAST(x AS DOUBLE))` get distinct names. An alias
/// inside an argument does not change its value: the analyzer, optimizer
/// and physical planner look through it.
#[derive(Debug)]
struct NameCasts;

impl ExprPlanner for NameCasts {
    fn plan_aggregate(
        &self,
        mut expr: RawAggregateExpr,
    ) -> Result<PlannerResult<RawAggregateExpr>, DataFusionError> {
        expr.args = name_casts(expr.args)?;
        Ok(PlannerResult::Original(expr))
    }

    fn plan_window(
        &self,
        mut expr: RawWindowExpr,
    ) -> Result<PlannerResult<RawWindowExpr>, DataFusionError> {
        expr.args = name_casts(expr.args)?;
        Ok(PlannerResult::Original(expr))
    }
}

/// `args`, those with a cast inside aliased by their `Display` form.
fn name_casts(args: Vec<LogicalExpr>) -> Result<Vec<LogicalExpr>, DataFusionError> {
    args.into_iter()
        .map(|arg| {
            let hidden = !matches!(arg, LogicalExpr::Alias(_))
                && arg
                    .exists(|e| Ok(matches!(e, LogicalExpr::Cast(_) | LogicalExpr::TryCast(_))))?;
            Ok(if hidden {
                let name = arg.to_string();
                arg.alias(name)
            } else {
                arg
            })
        })
        .collect()
}

/// The submit-time check of an SQL analysis: everything a run does before
/// it reads data. First what [`check`] checks (length, one read-only query,
/// nesting, table names), then the query is planned exactly as a run plans
/// it: the run's own session over `inputs` as empty tables with their
/// schemas (their files are ignored), [`plan`], the analyzer and optimizer,
/// the physical planner and the run's cooperative rewrite. So an unknown
/// column, a type error or an unknown function is reported now.
///
/// Planning reads no data and no store, and its memory is not limited, so
/// every failure of it is the query's: one the run would classify as a
/// (retryable) execution failure is an invalid query here.
///
/// Recursive, like the parser and the drop of a deep expression tree, and
/// blocking (it runs its own current-thread runtime): call it through
/// [`super::check_sql`], which gives it a thread with the stack the
/// engine's threads have.
pub(crate) fn check_planned(
    query: &str,
    inputs: Vec<TableInput>,
    max_bytes: usize,
) -> Result<(), EngineError> {
    let tables: Vec<String> = inputs.iter().map(|input| input.name.clone()).collect();
    // Cheap, and what it rejects (a long or deep query, DDL, another
    // table) gets its own error without a session being built.
    check(query, &tables, max_bytes)?;
    let inputs: Vec<TableInput> = inputs
        .into_iter()
        .map(|input| TableInput {
            files: Vec::new(),
            ..input
        })
        .collect();
    // A current-thread runtime runs the planning on this thread, with its
    // stack; planning does no I/O, so no drivers are needed.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime
        .block_on(plan_over_empty_tables(query, &inputs, max_bytes))
        .map_err(|error| match error {
            EngineError::Execution(message) => {
                EngineError::InvalidQuery(format!("the query cannot be planned: {message}"))
            }
            EngineError::Evaluation(message) => {
                EngineError::InvalidQuery(format!("the query fails while it is planned: {message}"))
            }
            other => other,
        })
}

/// [`check_planned`] after the text checks: a session like a run's over
/// `inputs` (without files), then the run's planning up to the physical
/// plan it would execute.
async fn plan_over_empty_tables(
    query: &str,
    inputs: &[TableInput],
    max_bytes: usize,
) -> Result<(), EngineError> {
    // Not the engine's runtime environment (the server has none): an
    // unlimited pool and no spill directory, which planning never uses.
    let env = RuntimeEnvBuilder::new()
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build()?;
    // The engine's defaults: the worker's own settings are not known here,
    // and none of them decides whether a query plans.
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let config = EngineConfig {
        threads,
        target_partitions: threads,
        max_sql_bytes: max_bytes,
        ..EngineConfig::default()
    };
    let url = ObjectStoreUrl::parse("crunch-check://inputs")?;
    let objects = Arc::new(object_store::memory::InMemory::new());
    let ctx = session::session(&env, &config, objects, &url, inputs).await?;
    let df = plan(&ctx, query, max_bytes).await?;
    let physical = df.create_physical_plan().await?;
    let (_trigger, stop) = Stop::new();
    yielding::cooperative(physical, &stop)?;
    Ok(())
}

/// Checks what can be checked of `query` without its inputs' schemas,
/// exactly as a run would: its length, that it is one read-only query
/// within the nesting limits, and that every table it reads is one of
/// `tables` (the run's input names). [`check_planned`] goes on to plan it.
///
/// Recursive, like the parser and the drop of a deep expression tree: call
/// it on a thread with the stack the engine's threads have.
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
