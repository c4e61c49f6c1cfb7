package blobs_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"testing/fstest"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/models"
	"github.com/ferrysync/ferry/plugins/blobs"
	"github.com/gin-gonic/gin"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob" // the S3 driver: s3:// bucket URLs
)

// A note's photos are attachment records referring to blobs; the blobs
// live next to the SQLite file.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ferry-example-")
	defer os.RemoveAll(dir)
	db, err := models.OpenSQLite(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	app, _ := framework.New(framework.Config{DB: db,
		Schemas: fstest.MapFS{"attachment.json": {Data: []byte(`{"type":"object"}`)}}})
	app.MustRegisterSchema("data.Attachment", framework.ModelOptions{Schema: "attachment.json"})
	media, err := blobs.New(blobs.Config{
		Models:          []string{"data.Attachment"},
		Dir:             filepath.Join(dir, "blobs"),
		MaxBytesPerUser: 5 << 30,
	})
	if err != nil {
		log.Fatal(err)
	}
	app.MustUse(media)
	if err := app.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	if err := app.Start(ctx); err != nil { // creates the tables, starts collecting
		log.Fatal(err)
	}
	defer app.Close()
	router := gin.New()
	app.Mount(router.Group("/sync"))
	for _, r := range router.Routes() {
		if filepath.Base(filepath.Dir(r.Path)) == "blobs" || filepath.Base(r.Path) == "blobs" {
			fmt.Println(r.Method, r.Path)
		}
	}
	// Unordered output:
	// POST /sync/blobs/uploads
	// GET /sync/blobs/:hash
	// HEAD /sync/blobs/:hash
}

// Blobs in S3 (or MinIO, R2…): the bytes in a bucket, the partial uploads
// on the local disk of Dir (or, for replicas without a shared disk, in
// tusd's s3store through Config.Uploads).
func ExampleNewBucketStore() {
	ctx := context.Background()
	bucket, err := blob.OpenBucket(ctx, "s3://media?region=eu-west-1")
	if err != nil {
		log.Fatal(err)
	}
	defer bucket.Close()
	media, err := blobs.New(blobs.Config{
		Models: []string{"data.Attachment"},
		Dir:    "/var/lib/ferry",
		Store:  blobs.NewBucketStore(bucket, "blobs/"),
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = media // app.MustUse(media)
}
