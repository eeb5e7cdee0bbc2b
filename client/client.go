// Package client is a small Go client for Gantry's REST API, used by the
// CLI and by tests. It speaks in the API's wire types (package wire).
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gantry/wire"
)

// Client calls one Gantry node.
type Client struct {
	Addr  string // e.g. http://127.0.0.1:7070
	Token string
	HTTP  *http.Client
}

// New returns a client for addr with token.
func New(addr, token string) *Client {
	addr = strings.TrimRight(addr, "/")
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &Client{Addr: addr, Token: token, HTTP: &http.Client{Transport: transport}}
}

// transport keeps enough idle connections for concurrent callers (the
// default of two per host makes busy clients reconnect constantly).
var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	return t
}()

// Error is an error answer from the API: its HTTP status, its code
// (wire.Code*, "" when the answer carried none) and its message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.doKeyed(ctx, method, path, "", in, out)
}

// doKeyed is do with an idempotency key: the server applies a write with
// the same key once, so it may be sent again.
func (c *Client) doKeyed(ctx context.Context, method, path, key string, in, out any) error {
	resp, err := c.rawKeyed(ctx, method, path, key, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

// raw sends a request and returns the response when its status is 2xx.
func (c *Client) raw(ctx context.Context, method, path string, in any) (*http.Response, error) {
	return c.rawKeyed(ctx, method, path, "", in)
}

// RetryFor bounds how long a request that may safely be sent again (a
// read, or a write with an idempotency key) is retried while the cluster
// answers 503 unavailable (an election, a node still starting).
var RetryFor = 30 * time.Second

// rawKeyed sends a request and returns the response when its status is
// 2xx; a read or a keyed write answered 503 is sent again with backoff for
// up to RetryFor.
func (c *Client) rawKeyed(ctx context.Context, method, path, key string, in any) (*http.Response, error) {
	var b []byte
	if in != nil {
		var err error
		if b, err = json.Marshal(in); err != nil {
			return nil, err
		}
	}
	retry := method == http.MethodGet || key != ""
	deadline := time.Now().Add(RetryFor)
	wait := 50 * time.Millisecond
	for {
		resp, err := c.send(ctx, method, path, key, b, in != nil)
		var e *Error
		if !retry || !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || time.Now().Add(wait).After(deadline) {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

func (c *Client) send(ctx context.Context, method, path, key string, body []byte, hasBody bool) (*http.Response, error) {
	var rd io.Reader
	if hasBody {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Addr+path, rd)
	if err != nil {
		return nil, err
	}
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if key != "" {
		req.Header.Set(wire.IdempotencyKeyHeader, key)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, c.reachError(err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, errorOf(resp)
	}
	return resp, nil
}

// errorOf reads an error answer.
func errorOf(resp *http.Response) *Error {
	var e wire.Error
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(b))
		if e.Error == "" {
			e.Error = resp.Status
		}
	}
	return &Error{Status: resp.StatusCode, Code: e.Code, Message: e.Error}
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// Login exchanges a username and password for an API token.
func (c *Client) Login(ctx context.Context, user, password, clientName string) (string, error) {
	var out wire.LoginResult
	err := c.do(ctx, "POST", "/api/v1/login", wire.Login{Username: user, Password: password, Client: clientName}, &out)
	return out.Token, err
}

// Submit submits a job. It sends an idempotency key, so a submission the
// cluster could not take during an election is sent again and still makes
// one job.
func (c *Client) Submit(ctx context.Context, spec wire.JobSpec) (*wire.Job, error) {
	var j wire.Job
	return &j, c.doKeyed(ctx, "POST", "/api/v1/jobs", newKey(), spec, &j)
}

// SubmitKeyed submits a job under the caller's idempotency key: every
// submission with the same key (from any node, at any time) makes one
// job, and a submission whose outcome was unknown can be sent again.
func (c *Client) SubmitKeyed(ctx context.Context, spec wire.JobSpec, key string) (*wire.Job, error) {
	var j wire.Job
	return &j, c.doKeyed(ctx, "POST", "/api/v1/jobs", key, spec, &j)
}

// newKey is a random idempotency key.
func newKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Job fetches a job.
func (c *Client) Job(ctx context.Context, id string) (*wire.Job, error) {
	var j wire.Job
	return &j, c.do(ctx, "GET", "/api/v1/jobs/"+url.PathEscape(id), nil, &j)
}

// Jobs lists jobs.
func (c *Client) Jobs(ctx context.Context, q url.Values) ([]wire.Job, string, error) {
	var out wire.JobList
	err := c.do(ctx, "GET", "/api/v1/jobs?"+q.Encode(), nil, &out)
	return out.Jobs, out.Next, err
}

// Cancel cancels a job.
func (c *Client) Cancel(ctx context.Context, id string) (*wire.Job, error) {
	var j wire.Job
	return &j, c.do(ctx, "POST", "/api/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, &j)
}

// CancelDependents cancels a job and, transitively, its dependents that
// have not started.
func (c *Client) CancelDependents(ctx context.Context, id string) (*wire.Job, error) {
	var j wire.Job
	return &j, c.do(ctx, "POST", "/api/v1/jobs/"+url.PathEscape(id)+"/cancel?dependents=true", nil, &j)
}

// Deps returns the graph around a job: its dependencies and dependents.
func (c *Client) Deps(ctx context.Context, id string) (*wire.JobGraph, error) {
	var g wire.JobGraph
	return &g, c.do(ctx, "GET", "/api/v1/jobs/"+url.PathEscape(id)+"/deps", nil, &g)
}

// Rerun gives chosen ended tasks of a job a new attempt in the same job:
// every failed one, or the tasks named.
func (c *Client) Rerun(ctx context.Context, id string, failed bool, tasks []int) (*wire.RerunResult, error) {
	var out wire.RerunResult
	return &out, c.do(ctx, "POST", "/api/v1/jobs/"+url.PathEscape(id)+"/rerun", wire.Rerun{Failed: failed, Tasks: tasks}, &out)
}

// Wait blocks until the job ends or timeout passes (server side).
func (c *Client) Wait(ctx context.Context, id string, timeout time.Duration) (*wire.Job, error) {
	var j wire.Job
	return &j, c.do(ctx, "GET", "/api/v1/jobs/"+url.PathEscape(id)+"/wait?timeout="+timeout.String(), nil, &j)
}

// Tasks lists all tasks of a job, following the cursor.
func (c *Client) Tasks(ctx context.Context, id string) ([]wire.Task, error) {
	var all []wire.Task
	cursor := ""
	for {
		var out wire.TaskList
		p := "/api/v1/jobs/" + url.PathEscape(id) + "/tasks?limit=10000"
		if cursor != "" {
			p += "&cursor=" + cursor
		}
		if err := c.do(ctx, "GET", p, nil, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Tasks...)
		if out.Next == "" {
			return all, nil
		}
		cursor = out.Next
	}
}

// Task fetches a task and its attempts.
func (c *Client) Task(ctx context.Context, id string, index int) (*wire.TaskDetail, error) {
	var t wire.TaskDetail
	return &t, c.do(ctx, "GET", "/api/v1/jobs/"+url.PathEscape(id)+"/tasks/"+strconv.Itoa(index), nil, &t)
}

// Logs opens an attempt's log (attempt 0: the latest); with follow it
// streams until the attempt ends. The attempt number is returned too.
func (c *Client) Logs(ctx context.Context, id string, index, attempt int, follow bool) (io.ReadCloser, int, error) {
	p := fmt.Sprintf("/api/v1/jobs/%s/tasks/%d/logs?", url.PathEscape(id), index)
	if attempt > 0 {
		p += "attempt=" + strconv.Itoa(attempt) + "&"
	}
	if follow {
		p += "follow=1"
	}
	resp, err := c.raw(ctx, "GET", p, nil)
	if err != nil {
		return nil, 0, err
	}
	n, _ := strconv.Atoi(resp.Header.Get("X-Gantry-Attempt"))
	return resp.Body, n, nil
}

// Nodes lists the cluster's nodes.
func (c *Client) Nodes(ctx context.Context) ([]wire.Node, error) {
	l, err := c.NodeList(ctx)
	return l.Nodes, err
}

// NodeList lists the nodes with the cluster's voting membership.
func (c *Client) NodeList(ctx context.Context) (*wire.NodeList, error) {
	var out wire.NodeList
	return &out, c.do(ctx, "GET", "/api/v1/nodes", nil, &out)
}

// Node returns one node with its GPUs and the attempts holding them.
func (c *Client) Node(ctx context.Context, name string) (*wire.Node, error) {
	var out wire.Node
	return &out, c.do(ctx, "GET", "/api/v1/nodes/"+url.PathEscape(name), nil, &out)
}

// SetNodeState drains or readies a node (admin).
func (c *Client) SetNodeState(ctx context.Context, name, action string) (*wire.Node, error) {
	return c.DrainNode(ctx, name, action, 0)
}

// DrainNode applies action ("drain", "ready", "remove") to a node; for
// "drain", a deadline > 0 moves tasks still running there elsewhere once it
// has passed.
func (c *Client) DrainNode(ctx context.Context, name, action string, deadline time.Duration) (*wire.Node, error) {
	var n wire.Node
	p := "/api/v1/nodes/" + url.PathEscape(name) + "/" + action
	if deadline > 0 {
		p += "?deadline=" + url.QueryEscape(deadline.String())
	}
	return &n, c.do(ctx, "POST", p, nil, &n)
}

// CreateUser creates an account (admin).
func (c *Client) CreateUser(ctx context.Context, name, password string, admin bool) error {
	return c.do(ctx, "POST", "/api/v1/users", wire.CreateUser{Username: name, Password: password, Admin: admin}, nil)
}

// Users lists the accounts (admin).
func (c *Client) Users(ctx context.Context) ([]wire.User, error) {
	var out wire.UserList
	return out.Users, c.do(ctx, "GET", "/api/v1/users", nil, &out)
}

// SetQuota replaces a user's quota (admin); a zero field is no limit.
// The storage quota stays as it was.
func (c *Client) SetQuota(ctx context.Context, name string, q wire.Resources) (*wire.User, error) {
	var u wire.User
	return &u, c.do(ctx, "PATCH", "/api/v1/users/"+url.PathEscape(name), wire.UpdateUser{Quota: &q}, &u)
}

// SetQuotas replaces both a user's quota and their storage quota in
// bytes, in one change (admin); zero is no limit.
func (c *Client) SetQuotas(ctx context.Context, name string, q wire.Resources, storage int64) (*wire.User, error) {
	var u wire.User
	return &u, c.do(ctx, "PATCH", "/api/v1/users/"+url.PathEscape(name), wire.UpdateUser{Quota: &q, StorageQuota: &storage}, &u)
}

// CreateSchedule adds a schedule that submits spec at the times cron names.
func (c *Client) CreateSchedule(ctx context.Context, name, cron string, spec wire.JobSpec, allowOverlap bool) (*wire.Schedule, error) {
	var s wire.Schedule
	return &s, c.do(ctx, "POST", "/api/v1/schedules", wire.ScheduleRequest{Name: name, Cron: cron, Spec: spec, AllowOverlap: allowOverlap}, &s)
}

// Schedules lists the caller's schedules (an admin's: everyone's).
func (c *Client) Schedules(ctx context.Context) ([]wire.Schedule, error) {
	var out wire.ScheduleList
	return out.Schedules, c.do(ctx, "GET", "/api/v1/schedules", nil, &out)
}

// Schedule fetches one schedule.
func (c *Client) Schedule(ctx context.Context, id string) (*wire.Schedule, error) {
	var s wire.Schedule
	return &s, c.do(ctx, "GET", "/api/v1/schedules/"+url.PathEscape(id), nil, &s)
}

// SetSchedulePaused pauses or resumes a schedule.
func (c *Client) SetSchedulePaused(ctx context.Context, id string, paused bool) (*wire.Schedule, error) {
	verb := "resume"
	if paused {
		verb = "pause"
	}
	var s wire.Schedule
	return &s, c.do(ctx, "POST", "/api/v1/schedules/"+url.PathEscape(id)+"/"+verb, nil, &s)
}

// DeleteSchedule removes a schedule; the jobs it submitted stay.
func (c *Client) DeleteSchedule(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/api/v1/schedules/"+url.PathEscape(id), nil, nil)
}

// Do sends a JSON request and decodes the answer; for calls the typed
// methods do not cover.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	return c.do(ctx, method, path, in, out)
}
