// Command busctl is the operator's command line for busline: it checks and
// shows configuration files, publishes and tails events, and lists, shows,
// replays and purges the messages in a consumer group's poison lane, on any
// transport, from the same YAML file the services use.
//
//	busctl config validate [--connect] FILE
//	busctl config show FILE
//	busctl publish --config FILE --event NAME [--key K] (--data JSON | --file F)
//	busctl tail --config FILE TOPIC [--group G] [--count N] [--history] [--create] [--json]
//	busctl poison list    --config FILE --group G (--topic T | --event NAME) [--id ID ...] [--older-than D] [--json]
//	busctl poison show    --config FILE --group G (--topic T | --event NAME) --id ID [--json]
//	busctl poison replay  --config FILE --group G (--topic T | --event NAME) (--all | --id ID ... | --older-than D) [--rate N] [--json]
//	busctl poison purge   --config FILE --group G (--topic T | --event NAME) (--all | --id ID ... | --older-than D) [--yes] [--json]
//
// Every command, and each group of commands (busctl config, busctl poison),
// prints its own help with --help. busctl completion bash|zsh|fish prints a
// shell completion script: commands, flags, YAML files for --config, and the
// groups and events of that file for --group and --event. Flags take two
// dashes (--config); they may come before or after arguments. Tables are for
// people; --json prints JSON for scripts. Progress and warnings go to stderr.
//
// The memory transport keeps messages inside one process, so busctl, a
// process of its own, sees none of a service's messages on it: busctl warns
// and works on an empty, private bus. Use it with rabbitmq, redis or kafka.
//
// # Exit codes
//
//	0    done
//	1    failed: invalid configuration, broker unreachable, purge not
//	     confirmed, the group has no poison lane for the topic (a misspelt
//	     --group, --topic or --event: the message names the groups that
//	     have one, and nothing was created), tail of a topic that does not
//	     exist (without --create; nothing was created), or an operation stopped
//	     part-way (the message says how many messages were done and that
//	     the rest are still in the lane)
//	2    bad command line: unknown command or flag, missing --config, --group,
//	     --topic/--event or selection, invalid name or payload
//	3    no message matched: poison show found no such id; replay or purge
//	     selected nothing, or some --id was not in the lane (the others were
//	     done)
//	130  interrupted (SIGINT, SIGTERM) during an operation, after saying how
//	     far it got; tail ends with 0 on Ctrl-C, its normal end
//
// # Delivery semantics
//
// publish returns once the broker has the message; only groups already
// provisioned on the topic receive it, as for any publisher. tail consumes in
// an ephemeral group of its own (busctl-tail-<random>), so the services'
// groups lose nothing, and deletes that group when it stops, on Ctrl-C too.
// Poison commands first check, without writing, that the group's lane
// exists, then work it through bus.PoisonLane: a sweep reads
// the lane up to a marker and puts back what it keeps, and a message is acked
// only after it was put back, replayed or purged, so an interrupted or failed
// command loses nothing. replay and purge act on exactly the messages their
// first pass selected; a message that arrives meanwhile is kept. Replayed
// messages go to the group's retry lane, so only that group handles them
// again.
//
// # Ordering
//
// list shows a lane oldest first. A sweep puts kept messages back at the end
// of the lane in the same order, so the lane's order holds; two sweeps of the
// same lane at once see each other's kept messages again and should be
// avoided. Replayed messages are handled in lane order by a group with one
// consumer, but after the messages the retry lane already holds.
package main
