package campaign

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/interpreter"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/perkshq/perks/internal/apperr"
)

// Condition limits. A condition is refused at save time when it is longer
// than MaxConditionLen, nests deeper than the parser's recursion limit, or
// when its estimated worst-case cost is above Limits.MaxEstimatedCost; at
// run time an evaluation stops once it spent Limits.RuntimeCost (and the
// campaign does not apply).
const (
	MaxConditionLen = 2000
	// DefaultMaxEstimatedCost and DefaultRuntimeCost are in CEL cost units
	// (about one per operation; a comparison is 1, a comprehension costs
	// per element). 10,000 is a few microseconds of work; Kubernetes allows
	// far more per validation rule, but a condition runs on every earn.
	DefaultMaxEstimatedCost = 10_000
	DefaultRuntimeCost      = 10_000
	// Size bounds the estimator assumes for data it cannot see: metadata is
	// at most 4096 bytes (earning.MaxMetadataBytes), so no list, map or
	// string in it is larger; attributes have at most MaxAttributes keys and
	// strings of at most 256 characters.
	metadataSizeBound  = 4096
	attributeSizeBound = 256
)

// Limits are the cost limits of conditions (zero fields take the defaults).
type Limits struct {
	MaxEstimatedCost uint64
	RuntimeCost      uint64
}

func (l Limits) withDefaults() Limits {
	if l.MaxEstimatedCost == 0 {
		l.MaxEstimatedCost = DefaultMaxEstimatedCost
	}
	if l.RuntimeCost == 0 {
		l.RuntimeCost = DefaultRuntimeCost
	}
	return l
}

// Fields each variable of the environment may be read with (earn.amount,
// user.attributes, ...). The variables are maps so that has() tells an
// absent amount from zero; this list keeps a typo (earn.amout) from saving
// a condition that would never match.
var knownFields = map[string]map[string]bool{
	"earn": {"amount": true, "action": true, "metadata": true, "points": true},
	"user": {"country": true, "tier": true, "attributes": true},
}

// env is the one CEL environment of conditions: earn, user and now.
var env = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("earn", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("user", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("now", cel.TimestampType),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserRecursionLimit(32),
		cel.ParserExpressionSizeLimit(MaxConditionLen),
	)
})

// compiles counts Compile calls (tests check earns never compile).
var compiles atomic.Int64

// Condition is a compiled condition, safe for concurrent use.
type Condition struct {
	Source string
	prg    cel.Program
	// Cost is the estimated worst-case cost, checked at compile time.
	Cost uint64
}

// Compile parses and type-checks src, checks its fields and that it returns
// a bool, estimates its cost against limits and builds the program with
// the runtime cost limit. Errors are INVALID_CONDITION (with the line and
// column, 1-based, in the message) or CONDITION_TOO_COSTLY, on the
// "condition" field.
func Compile(src string, limits Limits) (*Condition, error) {
	compiles.Add(1)
	limits = limits.withDefaults()
	if len(src) > MaxConditionLen {
		return nil, apperr.Field(apperr.CodeInvalidCondition, "condition", "condition must be at most %d bytes", MaxConditionLen)
	}
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("condition environment: %w", err)
	}
	ast, iss := e.Compile(src)
	if iss.Err() != nil {
		return nil, conditionError(iss.Errors())
	}
	if err := checkFields(ast); err != nil {
		return nil, err
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, apperr.Field(apperr.CodeInvalidCondition, "condition",
			"condition: line 1, column 1: the condition must return a bool, not %s", ast.OutputType())
	}
	est, err := e.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		return nil, apperr.Field(apperr.CodeConditionTooCostly, "condition", "condition: its cost cannot be estimated: %s", err)
	}
	if est.Max > limits.MaxEstimatedCost {
		return nil, apperr.Field(apperr.CodeConditionTooCostly, "condition",
			"condition: estimated cost up to %s is above the limit of %d", costString(est.Max), limits.MaxEstimatedCost)
	}
	prg, err := e.Program(ast, cel.CostLimit(limits.RuntimeCost), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, fmt.Errorf("condition program: %w", err)
	}
	return &Condition{Source: src, prg: prg, Cost: est.Max}, nil
}

func costString(c uint64) string {
	if c == math.MaxUint64 {
		return "unbounded"
	}
	return fmt.Sprint(c)
}

// conditionError reports the first error with its 1-based line and column.
func conditionError(errs []*cel.Error) error {
	if len(errs) == 0 {
		return apperr.Field(apperr.CodeInvalidCondition, "condition", "condition is invalid")
	}
	first := errs[0]
	line, col := first.Location.Line(), first.Location.Column()+1
	if line < 1 {
		line = 1
	}
	if col < 1 {
		col = 1
	}
	return apperr.Field(apperr.CodeInvalidCondition, "condition", "condition: line %d, column %d: %s", line, col, first.Message)
}

// checkFields refuses a selection of an unknown field of earn or user.
func checkFields(a *cel.Ast) error {
	native := a.NativeRep()
	var bad error
	celast.PostOrderVisit(native.Expr(), celast.NewExprVisitor(func(ex celast.Expr) {
		if bad != nil || ex.Kind() != celast.SelectKind {
			return
		}
		sel := ex.AsSelect()
		if sel.Operand().Kind() != celast.IdentKind {
			return
		}
		fields, ok := knownFields[sel.Operand().AsIdent()]
		if !ok || fields[sel.FieldName()] {
			return
		}
		loc := native.SourceInfo().GetStartLocation(ex.ID())
		line, col := loc.Line(), loc.Column()+1
		if line < 1 {
			line = 1
		}
		if col < 1 {
			col = 1
		}
		bad = apperr.Field(apperr.CodeInvalidCondition, "condition", "condition: line %d, column %d: %s has no field %q",
			line, col, sel.Operand().AsIdent(), sel.FieldName())
	}))
	return bad
}

// sizeEstimator bounds the sizes of the data conditions read, so that a
// comprehension over earn.metadata or user.attributes has a finite
// estimate.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	path := n.Path()
	if len(path) == 0 {
		return nil
	}
	switch path[0] {
	case "earn":
		return &checker.SizeEstimate{Min: 0, Max: metadataSizeBound}
	case "user":
		return &checker.SizeEstimate{Min: 0, Max: attributeSizeBound}
	}
	return nil
}

func (sizeEstimator) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	return nil
}

// errCostExceeded reports an evaluation stopped by the runtime cost limit.
var errCostExceeded = errors.New("condition stopped by the runtime cost limit")

// Eval runs the condition on vars. A runtime error (a missing key read
// without has(), a type mismatch, the cost limit) is returned; callers treat
// it as "does not apply".
func (c *Condition) Eval(vars map[string]any) (bool, error) {
	out, _, err := c.prg.Eval(vars)
	if err != nil {
		if isCostError(err) {
			return false, fmt.Errorf("%w: %w", errCostExceeded, err)
		}
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("condition returned %T, not a bool", out.Value())
	}
	return b, nil
}

func isCostError(err error) bool {
	var ce interpreter.EvalCancelledError
	return errors.As(err, &ce) && ce.Cause == interpreter.CostLimitExceeded
}

// cache holds compiled conditions by source text: a campaign version has
// one condition text, so each version compiles once per process and an
// earn never compiles. Identical texts (of any partner) share a program,
// which is safe: programs hold no data. Bounded so that a partner saving
// many distinct conditions cannot grow memory without limit.
type cache struct {
	limits Limits
	lru    *lru.Cache[string, *Condition]
}

const cacheSize = 4096

func newCache(limits Limits) *cache {
	c, err := lru.New[string, *Condition](cacheSize)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &cache{limits: limits, lru: c}
}

// get returns the compiled condition for src, compiling it on a miss.
func (c *cache) get(src string) (*Condition, error) {
	if cond, ok := c.lru.Get(src); ok {
		return cond, nil
	}
	cond, err := Compile(src, c.limits)
	if err != nil {
		return nil, err
	}
	c.lru.Add(src, cond)
	return cond, nil
}

// nowVar converts t for the now variable.
func nowVar(t time.Time) time.Time { return t.UTC() }
