-- Argo CD health of a ProvisioningPolicy (litellm.platform.dev/v1alpha1).
-- A policy has nothing to reconcile by itself: the operator indexes it and applies it to the
-- LiteLLMUsers that reference it, whose own health reports any problem. A policy that exists is
-- Healthy, unless its status carries an older observedGeneration or kstatus conditions (the
-- schema reserves both; the operator does not write them yet), which are read as a user's are.
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

local status = obj.status
local generation = obj.metadata and obj.metadata.generation
if status ~= nil and status.observedGeneration ~= nil and generation ~= nil
    and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message or "Stalled"
  return hs
end

local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = reconciling.message or "Reconciling"
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = ready.message or "Not ready"
  return hs
end

hs.status = "Healthy"
hs.message = "Policy is applied to the users that reference it"
return hs
