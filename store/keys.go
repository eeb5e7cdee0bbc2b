package store

import (
	"fmt"
	"strconv"
	"strings"
)

// Key layout (see DESIGN.md). Fixed-width decimal numbers keep keys sortable.
const (
	pUser          = "u/"   // u/<name> -> User
	pToken         = "t/"   // t/<sha256 hex> -> Token
	pUserToken     = "ut/"  // ut/<user>/<token id> -> sha256 hex
	pJob           = "j/"   // j/<job id> -> jobRecord: a Job's state, less its spec
	pJobSpec       = "jp/"  // jp/<job id> -> JobSpec, written once at submission
	pJobOwner      = "jo/"  // jo/<owner>/<job id> -> ""
	pJobState      = "js/"  // js/<state>/<job id> -> ""
	pJobOwnerSt    = "jos/" // jos/<owner>/<state>/<job id> -> ""
	pTask          = "k/"   // k/<job id>/<index> -> Task
	pAttempt       = "a/"   // a/<job id>/<index>/<n> -> Attempt
	pQueue         = "q/"   // q/<priority rank>/<job id>/<index> -> "": queued tasks of the default queue
	pQueueNamed    = "qn/"  // qn/<queue>/<priority rank>/<job id>/<index> -> "": queued tasks of another queue
	pQueueRec      = "qd/"  // qd/<queue> -> Queue
	pQueueUsage    = "qu/"  // qu/<queue> -> UserUsage (resources of the queue's placed, unended attempts)
	pNodeActive    = "na/"  // na/<node>/<job id>/<index>/<n> -> ""
	pDependent     = "dep/" // dep/<dependency job id>/<dependent job id> -> "" (afterok), "any" (afterany) or "notok" (afternotok): job-level waits not yet met
	pDependedBy    = "dby/" // dby/<dependency job id>/<kind>/<dependent job id> -> "": every edge, kept until either job is purged
	pSubmitKey     = "sk/"  // sk/<owner>/<idempotency key> -> job id
	pReleased      = "rel/" // rel/<dependency job id>/<dependent job id> -> "" or "any": released when the dependency ended (a rerun holds them again)
	pNode          = "n/"   // n/<name> -> Node
	pUserUsage     = "uu/"  // uu/<user> -> UserUsage (resources of the user's placed, unended attempts)
	pSchedule      = "s/"   // s/<id> -> Schedule
	pScheduleOwner = "so/"  // so/<owner>/<id> -> ""
	kApplied       = "m/applied"
	kCluster       = "m/cluster"
	kLayout        = "m/layout" // the layout version of the records (jobrecords.go)
)

// The values of dep/ and rel/ keys: the dependent's kind of wait. Empty is
// afterok (what the key held before kinds existed).
const (
	depAny   = "any"
	depNotOK = "notok"
)

// depValue is the dep/ value of a job-level dependency kind.
func depValue(kind string) []byte {
	switch kind {
	case DepAfterAny:
		return []byte(depAny)
	case DepAfterNotOK:
		return []byte(depNotOK)
	}
	return nil
}

// depKind is the kind a dep/ or rel/ value records.
func depKind(v []byte) string {
	switch string(v) {
	case depAny:
		return DepAfterAny
	case depNotOK:
		return DepAfterNotOK
	}
	return DepAfterOK
}

func idx(i int) string { return fmt.Sprintf("%06d", i) }
func att(n int) string { return fmt.Sprintf("%03d", n) }

// prioRank sorts higher priorities first under ascending key order.
func prioRank(p int) string { return fmt.Sprintf("%05d", MaxPriority-p) }

func userKey(name string) []byte          { return []byte(pUser + name) }
func tokenKey(hash string) []byte         { return []byte(pToken + hash) }
func userTokenKey(user, id string) []byte { return []byte(pUserToken + user + "/" + id) }
func jobKey(id string) []byte             { return []byte(pJob + id) }
func jobSpecKey(id string) []byte         { return []byte(pJobSpec + id) }
func jobOwnerKey(owner, id string) []byte { return []byte(pJobOwner + owner + "/" + id) }
func jobStateKey(state, id string) []byte { return []byte(pJobState + state + "/" + id) }
func jobOwnerStateKey(o, s, id string) []byte {
	return []byte(pJobOwnerSt + o + "/" + s + "/" + id)
}
func taskKey(job string, i int) []byte { return []byte(pTask + job + "/" + idx(i)) }
func attemptKey(job string, i, n int) []byte {
	return []byte(pAttempt + job + "/" + idx(i) + "/" + att(n))
}
func nodeActiveKey(node, job string, i, n int) []byte {
	return []byte(pNodeActive + node + "/" + job + "/" + idx(i) + "/" + att(n))
}
func dependentKey(dep, job string) []byte { return []byte(pDependent + dep + "/" + job) }
func releasedKey(dep, job string) []byte  { return []byte(pReleased + dep + "/" + job) }
func dependedByKey(dep, kind, job string) []byte {
	return []byte(pDependedBy + dep + "/" + kind + "/" + job)
}
func submitKeyKey(owner, key string) []byte { return []byte(pSubmitKey + owner + "/" + key) }
func nodeKey(name string) []byte            { return []byte(pNode + name) }
func userUsageKey(name string) []byte       { return []byte(pUserUsage + name) }
func queueRecKey(name string) []byte        { return []byte(pQueueRec + name) }
func queueUsageKey(name string) []byte      { return []byte(pQueueUsage + name) }
func scheduleKey(id string) []byte          { return []byte(pSchedule + id) }
func scheduleOwnerKey(owner, id string) []byte {
	return []byte(pScheduleOwner + owner + "/" + id)
}

// parseQueueKey splits q/<rank>/<job>/<index> and
// qn/<queue>/<rank>/<job>/<index>.
func parseQueueKey(k []byte) (job string, i int, ok bool) {
	parts := strings.Split(string(k), "/")
	if n := len(parts); n == 4 && parts[0]+"/" == pQueue || n == 5 && parts[0]+"/" == pQueueNamed {
		i, err := strconv.Atoi(parts[n-1])
		return parts[n-2], i, err == nil
	}
	return "", 0, false
}

// parseNodeActiveKey splits na/<node>/<job>/<index>/<n>.
func parseNodeActiveKey(k []byte) (job string, i, n int, ok bool) {
	parts := strings.Split(string(k), "/")
	if len(parts) != 5 {
		return "", 0, 0, false
	}
	i, err1 := strconv.Atoi(parts[3])
	n, err2 := strconv.Atoi(parts[4])
	return parts[2], i, n, err1 == nil && err2 == nil
}
