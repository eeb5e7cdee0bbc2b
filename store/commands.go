package store

// The table of commands: every change to the replicated state is one line
// here (type name, version, and the apply function, whose signature gives
// the payload and result types). Proposing (Command.Propose), applying,
// forwarding a result from the leader (DecodeResult) and the tests that
// walk the table all read it. Adding a command is adding a line; see
// DESIGN.md, "Adding a command". carriesAudit(v): from version v an entry
// may carry the audit record of the request's action (the commands of
// audited routes; an older binary refuses such an entry rather than
// apply it without its record).
var (
	// Accounts and tokens.
	CmdBootstrap   = define("bootstrap", 1, (*applier).bootstrap) // cluster id, the admin account and its first token (once)
	CmdCreateUser  = define("user.create", 2, (*applier).createUser).carriesAudit(2)
	CmdUpdateUser  = define("user.update", 5, (*applier).updateUser).carriesAudit(4).lowestFor(needsUpdateUser) // disable, password, quota; v2: fair-share weight; v3: end sessions; v4: carries its audit record; v5: storage quota
	CmdCreateToken = define("token.create", 2, (*applier).createToken).carriesAudit(2)
	CmdDeleteToken = define("token.delete", 2, (*applier).deleteToken).carriesAudit(2)

	// Jobs, tasks and attempts.
	CmdSubmitJob      = define("job.submit", 6, (*applier).submitJob).lowestFor(needsSubmitJob) // v2: dependencies; v3: network; v4: inputs; v5: output; v6: job inputs (job:JOB)
	CmdCancelJob      = define("job.cancel", 2, (*applier).cancelJob)
	CmdPlace          = define("task.place", 1, (*applier).place) // a batch of the scheduler's placements, each re-checked
	CmdAttemptStarted = define("attempt.started", 1, (*applier).attemptStarted)
	CmdAttemptEnded   = define("attempt.ended", 2, (*applier).attemptEnded).lowestFor(needsAttemptEnded) // v2: output
	CmdPurgeJobs      = define("job.purge", 1, (*applier).purgeJobs)                                     // job retention: removes jobs that ended before a cut-off
	CmdRerunTasks     = define("job.rerun", 1, (*applier).rerunTasks)                                    // ended tasks get a new attempt in the same job
	CmdPreempt        = define("task.preempt", 1, (*applier).preempt)                                    // the scheduler's victims: stopped after a grace period, requeued

	// A node's attempt starts and ends of a short interval (node/reports),
	// each with its own outcome: one entry instead of one per report.
	CmdReportAttempts = define("attempt.report", 2, (*applier).reportAttempts).lowestFor(needsReportAttempts) // v2: an end's output

	// Queues.
	CmdCreateQueue = define("queue.create", 1, (*applier).createQueue)
	CmdUpdateQueue = define("queue.update", 1, (*applier).updateQueue)
	CmdDeleteQueue = define("queue.delete", 1, (*applier).deleteQueue) // only a queue without queued or running tasks

	// Schedules.
	CmdCreateSchedule = define("schedule.create", 1, (*applier).createSchedule)
	CmdUpdateSchedule = define("schedule.update", 1, (*applier).updateSchedule)
	CmdDeleteSchedule = define("schedule.delete", 1, (*applier).deleteSchedule)
	CmdFireSchedule   = define("schedule.fire", 2, (*applier).fireSchedule).lowestFor(needsFireSchedule) // the leader's "run due now", once per due time; v2: inputs re-resolved at each run

	// Nodes and cluster membership.
	CmdUpsertNode    = define("node.upsert", 1, (*applier).upsertNode)
	CmdSetNodeState  = define("node.state", 2, (*applier).setNodeState).carriesAudit(2) // drain, ready, down
	CmdEvictNode     = define("node.evict", 1, (*applier).evictNode)                    // a draining node's tasks move once its deadline passed
	CmdNodeLost      = define("node.lost", 1, (*applier).nodeLost)                      // down: its attempts end node_lost and are rescheduled
	CmdRemoveNode    = define("node.remove", 2, (*applier).removeNode).carriesAudit(2)  // node.lost, then the node is deleted
	CmdSetJoinSecret = define("cluster.join_secret", 2, (*applier).setJoinSecret).carriesAudit(2)

	// The community catalog (node/catalog).
	CmdPublishRepo       = define("catalog.publish", 4, (*applier).publishRepo).carriesAudit(3).lowestFor(needsPublishRepo) // v2: review (pending unless approved); v4: kind (dataset, model)
	CmdUnpublishRepo     = define("catalog.unpublish", 1, (*applier).unpublishRepo)
	CmdAcceptLicence     = define("catalog.accept", 1, (*applier).acceptLicence)
	CmdRequestAccess     = define("catalog.request", 1, (*applier).requestAccess)
	CmdDecideAccess      = define("catalog.decide", 1, (*applier).decideAccess)        // approve, reject, revoke
	CmdRemoveNotice      = define("catalog.notice.remove", 1, (*applier).removeNotice) // by the base's rights holder
	CmdCountPulls        = define("catalog.pulls", 1, (*applier).countPulls)           // a node's pull counts, batched
	CmdSetTrialAllowance = define("catalog.trial", 1, (*applier).setTrialAllowance)

	// Governance (node/governance): the audit log, inboxes, review,
	// reports and takedowns. Governance commands append their own audit
	// record; audit.append records what other routes did or refused.
	CmdAppendAudit   = define("audit.append", 1, (*applier).appendAudit)
	CmdMarkRead      = define("inbox.read", 1, (*applier).markRead)
	CmdSendMessage   = define("inbox.send", 1, (*applier).sendMessage) // an admin's message to a user
	CmdReviewRules   = define("review.rules", 1, (*applier).setReviewRules)
	CmdReview        = define("review.decide", 1, (*applier).decideReview) // approve or reject a publication
	CmdFileReport    = define("report.file", 1, (*applier).fileReport)
	CmdDismissReport = define("report.dismiss", 1, (*applier).dismissReport)
	CmdTakeDown      = define("image.takedown", 1, (*applier).takeDown) // settles the image's open reports; cancels the listed jobs of others
	CmdRestoreImage  = define("image.restore", 1, (*applier).restoreImage)
	CmdSuspendUser   = define("user.suspend", 1, (*applier).suspendUser) // optionally cancels the account's jobs
	CmdRestoreUser   = define("user.restore", 1, (*applier).restoreUser)

	// Infringement notices and counter-notices (store/notices.go): each
	// step records itself on the notice's timeline and in the audit log.
	CmdFileNotice        = define("notice.file", 1, (*applier).fileNotice)            // attachments stored content-addressed in the same entry
	CmdDecideNotice      = define("notice.decide", 1, (*applier).decideNotice)        // takedown, reject, restore, keep_down; the leader's automatic restore
	CmdFileCounter       = define("notice.counter", 1, (*applier).fileCounter)        // the publisher's; starts the waiting period
	CmdRecordCourtAction = define("notice.court", 1, (*applier).recordCourtAction)    // the notifier's: no automatic restore
	CmdNoticeSettings    = define("notice.settings", 1, (*applier).setNoticeSettings) // waiting period, public form

	// Registry metadata (node/registry).
	CmdRegLinkBlob    = define("registry.blob.link", 2, (*applier).regLinkBlob).lowestFor(func(*RegLinkBlob) int { return 1 }) // v2: refused over the owner's storage quota
	CmdRegUnlinkBlobs = define("registry.blob.unlink", 2, (*applier).regUnlinkBlobs).carriesAudit(2)
	// CmdRegBlobLocated records that a node holds (or, with Gone, no longer
	// holds) the bytes of blobs: a node lacking a blob learns which peers
	// to fetch it from, and a push how many copies the cluster has.
	CmdRegBlobLocated    = define("registry.blob.located", 1, (*applier).regBlobLocated)
	CmdRegPutManifest    = define("registry.manifest.put", 1, (*applier).regPutManifest)
	CmdRegDeleteManifest = define("registry.manifest.delete", 2, (*applier).regDeleteManifest).carriesAudit(2)
	CmdRegDeleteTag      = define("registry.tag.delete", 2, (*applier).regDeleteTag).carriesAudit(2)
)
