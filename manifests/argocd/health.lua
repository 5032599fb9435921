-- Argo CD health check for autoglm.io/AutoGLMDeployment.
-- Maps the operator's kstatus-style status to Healthy / Progressing / Suspended / Degraded.
-- Installed into argocd-cm as resource.customizations.health.autoglm.io_AutoGLMDeployment
-- (see manifests/argocd/kustomization.yaml).
local hs = {status = "Progressing", message = "Waiting for the operator"}

local function condition(status, kind)
  if status.conditions == nil then return nil end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then return c end
  end
  return nil
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then return c.message end
  if c ~= nil and c.reason ~= nil then return c.reason end
  return fallback
end

if obj.status == nil then
  return hs
end
local status = obj.status
local generation = obj.metadata.generation or 0
if status.observedGeneration == nil or status.observedGeneration < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local degraded = condition(status, "Degraded")
local ready = condition(status, "Ready")
local progressing = condition(status, "Progressing")

if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = text(degraded, "Degraded")
  return hs
end
if ready ~= nil and ready.status == "False" and ready.reason == "InvalidSpec" then
  hs.status = "Degraded"
  hs.message = text(ready, "Invalid spec")
  return hs
end
if status.phase == "Paused" or (status.canary ~= nil and status.canary.paused == true) then
  hs.status = "Suspended"
  hs.message = "Rollout paused: " .. text(progressing, "resume with `autoglm rollout resume`")
  return hs
end
if progressing ~= nil and progressing.status == "True" then
  hs.message = text(progressing, "Progressing")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready, "Ready")
  return hs
end
hs.message = text(ready, "Not ready yet")
return hs
