#!/bin/sh
# bot-user.sh: print the nats-server user entry of one bot that serves one
# guild, for the users list of the LEDGER account in accounts.conf.
#
# Usage: deploy/nats/bot-user.sh GUILD_ID BOT_PUBLIC_NKEY [NAME ...]
#
#   GUILD_ID         the guild's snowflake, in decimal
#   BOT_PUBLIC_NKEY  the bot's public user nkey (nk -gen user -pubout; the bot
#                    keeps the seed)
#   NAME             more durable consumers for the bot, named
#                    bot_GUILD_ID_NAME; it always has bot_GUILD_ID
#
# Environment: MODLEDGER_SUBJECT_PREFIX (default modledger), MODLEDGER_STREAM
# (default MODLEDGER), as the ledger is configured.
#
# The bot may:
#   - send every command for its guild except expire (the scheduler's), and
#     every query for its guild;
#   - read its guild's events through its own durable consumers (bot_GUILD_ID
#     and bot_GUILD_ID_NAME), whose one filter subject must lie within its
#     guild, or with a core subscription on
#     <prefix>.case.GUILD_ID.>;
#   - read data keys (direct gets on the key stream <stream>_KEYS), to open
#     the sealed personal text of its guild's events; it cannot write or
#     delete them;
#   - receive replies only on the inbox prefix _INBOX.bot.GUILD_ID: connect
#     with that custom inbox prefix (nats.CustomInboxPrefix in Go,
#     inbox_prefix in nats.py, inboxPrefix in nats.js). It cannot subscribe
#     to _INBOX.>, where other users' replies travel.
# Nothing else: no other guild, no event subjects, no stream management.
# docs/security.md explains each rule; deploy/nats_test.go proves them.
set -eu

if [ $# -lt 2 ]; then
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
guild=$1
nkey=$2
shift 2
prefix=${MODLEDGER_SUBJECT_PREFIX:-modledger}
stream=${MODLEDGER_STREAM:-MODLEDGER}

case $guild in
'' | 0* | *[!0-9]*)
	echo "bot-user.sh: guild id $guild: want a snowflake in decimal" >&2
	exit 2
	;;
esac
case $nkey in
U*) ;;
*)
	echo "bot-user.sh: $nkey is not a public user nkey (they start with U)" >&2
	exit 2
	;;
esac
names="bot_$guild"
for n in "$@"; do
	case $n in
	'' | *[!A-Za-z0-9_-]*)
		echo "bot-user.sh: consumer name $n: use letters, digits, _ and -" >&2
		exit 2
		;;
	esac
	names="$names bot_${guild}_$n"
done

consumers() {
	for c in "$@"; do
		cat <<ENTRY
          "\$JS.API.CONSUMER.CREATE.$stream.$c.$prefix.case.$guild.>"
          "\$JS.API.CONSUMER.INFO.$stream.$c"
          "\$JS.API.CONSUMER.DELETE.$stream.$c"
          "\$JS.API.CONSUMER.MSG.NEXT.$stream.$c"
          "\$JS.ACK.$stream.$c.>"
ENTRY
	done
}

cat <<ENTRY
      # bot of guild $guild
      {
        nkey: $nkey
        permissions: {
          publish: {
            allow: [
              "$prefix.cmd.$guild.*"
              "$prefix.query.$guild.*"
              "\$JS.API.DIRECT.GET.${stream}_KEYS"
$(consumers $names | sed 's/^/    /')
            ]
            deny: [
              "$prefix.cmd.$guild.expire"
            ]
          }
          subscribe: {
            allow: [
              "_INBOX.bot.$guild.>"
              "$prefix.case.$guild.>"
            ]
          }
        }
      }
ENTRY
