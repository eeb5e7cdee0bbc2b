package api

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"gantry/gantrytest"
	"gantry/node/registry"
)

// TestImageViewsShowEveryField: the API's views of the registry's
// repositories and garbage-collection reports encode as the registry's own
// types (the API adds only the catalog fields of a repository), so a field
// added there and forgotten here fails.
func TestImageViewsShowEveryField(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for round := 0; round < 20; round++ {
		repos := gantrytest.RandomValue(reflect.TypeFor[[]registry.RepoInfo](), rng).([]registry.RepoInfo)
		if got, want := gantrytest.JSONValue(t, imageRepos(repos)), gantrytest.JSONValue(t, repos); !reflect.DeepEqual(got, want) {
			t.Fatalf("view of repositories\n%v\nis not the registry's\n%v", got, want)
		}
		gc := gantrytest.RandomValue(reflect.TypeFor[registry.GCReport](), rng).(registry.GCReport)
		if got, want := gantrytest.JSONValue(t, gcReport(gc)), gantrytest.JSONValue(t, gc); !reflect.DeepEqual(got, want) {
			t.Fatalf("view of a GC report\n%v\nis not the registry's\n%v", got, want)
		}
	}
}
