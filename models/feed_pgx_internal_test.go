package models

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/uptrace/bun"
)

type pgxNote struct {
	bun.BaseModel `bun:"table:pgx_notes"`
	Base
	Title  string          `bun:"title,notnull" json:"title"`
	Tags   []string        `bun:"tags" json:"tags"`
	Meta   map[string]any  `bun:"meta" json:"meta,omitempty"`
	Score  float64         `bun:"score,notnull" json:"score"`
	Raw    json.RawMessage `bun:"raw,type:jsonb,notnull" json:"raw"`
	Secret string          `bun:"secret,notnull" json:"-"`
}

type nullableNote struct {
	bun.BaseModel `bun:"table:nullable_notes"`
	Base
	Title string `bun:"title" json:"title"` // nullable: read through bun
}

// TestPgxFeedMatchesBun reads the same feeds through bun and through pgx
// and requires the same records: typed tables with json(b) columns, nil
// slices and maps, floats and raw JSON, and the generic table.
func TestPgxFeedMatchesBun(t *testing.T) {
	ctx := context.Background()
	db := openTestPostgres(t)
	if newPgxFeedPlan(db.Dialect().Tables().Get(reflect.TypeFor[nullableNote]())) != nil {
		t.Fatal("a nullable plain column would be read through pgx, which fails on NULL")
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[pgxNote](), reflect.TypeFor[GenericRecord]()} {
		if newPgxFeedPlan(db.Dialect().Tables().Get(typ)) == nil {
			t.Fatalf("%s would be read through bun: the test would compare bun with itself", typ)
		}
	}
	s := NewStore(db)
	if err := s.Register("t.Note", Typed[pgxNote]()); err != nil {
		t.Fatal(err)
	}
	if err := s.Register("t.Doc", Generic()); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC)
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	codec := NewTypedCodec[pgxNote]()
	var recs []*Record
	for i := range 6 {
		v := &pgxNote{Title: fmt.Sprintf("n%d", i), Score: float64(i) / 3, Raw: json.RawMessage(`{"k":[1,2]}`)}
		if i%2 == 0 {
			v.Tags, v.Meta = []string{"a", "é\u2028"}, map[string]any{"x": 1.5, "y": nil}
		}
		v.Base = Base{OwnerID: "ann", ID: fmt.Sprintf("u%d", i), ModifiedAt: t0, IsDeleted: i == 5, Version: int64(2*i + 1), CreatedAt: t0, UpdatedAt: t0}
		rec, err := codec.ToRecord("t.Note", v)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &rec)
	}
	if err := tx.Write(ctx, WriteParams{Model: "t.Note", Records: recs, Mode: WriteUpsert}); err != nil {
		t.Fatal(err)
	}
	var docs []*Record
	for i := range 4 {
		docs = append(docs, &Record{Model: "t.Doc", UID: fmt.Sprintf("d%d", i), Owner: "ann", ModifyAt: t0, Version: int64(2*i + 2),
			Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), CreatedAt: t0, UpdatedAt: t0})
	}
	if err := tx.Write(ctx, WriteParams{Model: "t.Doc", Records: docs, Mode: WriteUpsert}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []ReadFeedParams{
		{Scopes: []ScopeRange{{Scope: "ann", UpTo: 20}}},
		{Scopes: []ScopeRange{{Scope: "ann", After: 2, UpTo: 9}}, Limit: 3},
		{Scopes: []ScopeRange{{Scope: "ann", UpTo: 20}}, SkipDeleted: true, Models: []string{"t.Note"}},
		{Scopes: []ScopeRange{{Scope: "ann", UpTo: 20}}, MaxBytes: 400},
	} {
		viaPgxFeed, err := s.ReadFeed(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		viaBun, err := bunReader{s: s.(*bunStore), idb: db}.ReadFeed(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(viaPgxFeed, viaBun) {
			t.Fatalf("%+v:\npgx %+v\nbun %+v", p, viaPgxFeed, viaBun)
		}
		if len(viaBun.Records) == 0 {
			t.Fatalf("%+v read nothing", p)
		}
	}
}

// openTestPostgres opens a fresh schema of the test PostgreSQL (as
// framework/synctest does, which this package's own tests cannot import).
func openTestPostgres(t *testing.T) *bun.DB {
	t.Helper()
	ctx := context.Background()
	base := os.Getenv("FERRY_TEST_DATABASE_URL")
	if base == "" {
		base = "postgres://root@127.0.0.1:5432/test?sslmode=disable"
	}
	admin, err := OpenPostgres(ctx, base)
	if err != nil {
		if os.Getenv("FERRY_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL unreachable: %v", err)
		}
		t.Skipf("PostgreSQL unreachable (set FERRY_TEST_DATABASE_URL): %v", err)
	}
	schema := fmt.Sprintf("ferry_models_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") //nolint:errcheck // best effort
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := OpenPostgres(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
