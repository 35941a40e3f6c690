-- Argo CD health of a ProvisioningPolicy (litellm.platform.dev/v1alpha1): its rollout, like a
-- Deployment's. The operator's status says how many LiteLLMUsers reference the policy, how many
-- were reconciled against its current generation (updatedUsers) and how many are Ready.
--   Progressing: being deleted, no status or conditions yet, the current generation not observed yet, or
--                Reconciling=True (users not yet reconciled against this generation);
--   Degraded:    Stalled=True (every user left needs a change by someone);
--   Healthy:     Ready=True for the current generation: every user reconciled and Ready.
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
  hs.message = "Waiting for the operator to observe the policy"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
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
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end

hs.status = "Progressing"
hs.message = ready.message or "Not ready"
return hs
