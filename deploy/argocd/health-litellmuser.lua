-- Argo CD health of a LiteLLMUser or LiteLLMTeam (litellm.platform.dev/v1alpha1), from its
-- kstatus conditions (both kinds' status follows the same rules).
--   Progressing: being deleted, no status yet, the current generation not observed yet, or
--                Reconciling=True (not judged yet: new, creating, its policy just changed; or
--                a transient failure, e.g. LiteLLM unreachable, that the operator retries);
--   Degraded:    Stalled=True (needs a change by someone: policy not found, rejected ...);
--   Suspended:   Ready=True with reason Suspended (a user's keys are blocked on purpose);
--   Healthy:     Ready=True and status.observedGeneration == metadata.generation.
local hs = {}

local function condition(status, kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Pending deletion"
  return hs
end

local status = obj.status
local ready = condition(status, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile it"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = ready.message or stalled.message or "Stalled"
  return hs
end

local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = ready.message or reconciling.message or "Reconciling"
  return hs
end

if ready.status == "True" then
  if ready.reason == "Suspended" then
    hs.status = "Suspended"
  else
    hs.status = "Healthy"
  end
  hs.message = ready.message or ""
  return hs
end

-- Ready is False or Unknown, yet neither Stalled nor Reconciling: not settled.
hs.status = "Progressing"
hs.message = ready.message or "Not ready"
return hs
