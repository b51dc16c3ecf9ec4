"""Token buckets in Redis, per API key and per tenant. If Redis is unreachable the limit fails
open: ingestion goes on (PostgreSQL is the record of truth) and the failure is logged and counted."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis
from django.conf import settings

from metering.metrics import RATE_LIMIT_FAILOPEN
from metering.redisconn import redis_client

logger = logging.getLogger(__name__)


# KEYS: bucket keys; ARGV: now (ms), then rate (tokens/s) and burst per key, then cost.
# Refills each bucket, takes `cost` from all of them only if every one has enough, and returns the
# seconds to wait when one has not.
_LUA = """
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[#ARGV])
local wait = 0
local state = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local data = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(data[1]) or burst
  local ts = tonumber(data[2]) or now
  tokens = math.min(burst, tokens + (now - ts) / 1000 * rate)
  state[i] = tokens
  if tokens < cost then
    wait = math.max(wait, (cost - tokens) / rate)
  end
end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local tokens = state[i]
  if wait == 0 then tokens = tokens - cost end
  redis.call('HSET', key, 't', tokens, 'ts', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
return tostring(wait)
"""


@dataclass(frozen=True)
class Limit:
    key: str
    rate: float  # tokens (events) per second
    burst: float


_scripts: dict[int, object] = {}  # per client


def _get_script():
    client = redis_client()
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_LUA)
    return script


def take(limits: list[Limit], cost: int) -> float:
    """Take `cost` tokens from every bucket; 0.0 when allowed, else the seconds to wait."""
    try:
        args: list[float] = [int(time.time() * 1000)]
        for limit in limits:
            args += [limit.rate, limit.burst]
        args.append(cost)
        return float(_get_script()(keys=[f"billing:rl:{limit.key}" for limit in limits], args=args))
    except redis.RedisError as exc:
        RATE_LIMIT_FAILOPEN.inc()
        logger.warning("rate limit skipped: redis unavailable", extra={"error": str(exc)})
        return 0.0


def ingest_limits(*, tenant, credential) -> list[Limit]:
    """Events per second per credential and per tenant (burst: two seconds' worth)."""
    per_key = settings.INGEST_EVENTS_PER_SECOND_PER_KEY
    per_tenant = settings.INGEST_EVENTS_PER_SECOND_PER_TENANT
    return [
        Limit(key=f"{tenant.schema_name}:cred:{credential}", rate=per_key, burst=2 * per_key),
        Limit(key=f"{tenant.schema_name}:tenant", rate=per_tenant, burst=2 * per_tenant),
    ]
