//! The rules: the status class first, then what the provider wrote.
//!
//! Text refines a status where status codes lie in well-known ways (OpenAI sends credit
//! exhaustion as 429, Gemini and xAI send a bad key as 400, Anthropic and Groq send overload as
//! 429 or 498, aggregators wrap upstream errors in their own status), but it never turns a
//! server error (5xx) into a verdict about the key: a 5xx body that mentions authentication,
//! billing or permission is still the server's problem. AWS-style error codes decide whatever
//! the status. See `docs/CLASSIFIER.md` for the order and its sources.

use super::body::ErrorFields;
use super::{Provider, Reason};
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::nfa::noncontiguous::NFA;
use aho_corasick::{Anchored, MatchKind};
use std::sync::OnceLock;

const KEY_REJECTED: &[&str] = &[
    // A kind of credential the API refuses whatever its value: GitHub Copilot's 400
    // "Personal Access Tokens are not supported for this endpoint", Google's 401 "API keys
    // are not supported by this API. Expected OAuth2 access token".
    "access tokens are not supported",
    "access token is not supported",
    "api keys are not supported",
    "api key is not supported",
    "invalid_api_key",
    "incorrect api key",
    "api key not valid",
    "api_key_invalid",
    "api key expired",
    "api_key_expired",
    "invalid api key",
    "api key is invalid",
    "invalid x-api-key",
    "authentication_error",
    "authentication fails",
    "authentication failed",
    "invalid_authentication",
    "invalid authentication",
    "invalid credentials",
    "no auth credentials found",
    "unrecognizedclientexception",
    "security token included in the request is invalid",
    "invalidsignatureexception",
    "expiredtokenexception",
    "api key was reported as leaked",
    "api key has been revoked",
    "key has been disabled",
    // The key's organization is switched off (Anthropic "This organization has been disabled",
    // Groq `organization_restricted`): no request with this key can succeed.
    "organization has been disabled",
    "organization has been restricted",
    "organization_restricted",
    // The account behind the key is switched off: Kimi's "Access terminated. Review our
    // Community Guidelines …", and the usual "account suspended / deactivated" wordings. (Not
    // Kimi's type `access_terminated_error`: Kimi For Coding sends its weekly usage limit with
    // it too.)
    "access terminated",
    "account has been suspended",
    "account suspended",
    // Google: "Permission denied: Consumer 'api_key:…' has been suspended." (`ErrorInfo.reason`
    // `CONSUMER_SUSPENDED`): the key, or the project behind it, is switched off.
    "consumer_suspended",
    "' has been suspended",
    // Gateways' keys past their expiry (LiteLLM `expired_key` "Authentication Error - Expired
    // Key"), and banned users (new-api "用户已被封禁", "the user has been banned").
    "expired key",
    "expired_key",
    "has been banned",
    "已被封禁",
    "account has been deactivated",
    "account deactivated",
    "account has been disabled",
    "account is disabled",
    "account is deactivated",
    // The whole resource or workspace behind the key is switched off: Azure's 403 "Your
    // resource has been temporarily blocked because we detected behavior that may violate
    // our content policy" (for days, whatever the request), ChatGPT's Codex backend 402
    // `deactivated_workspace`.
    "resource has been temporarily blocked",
    "resource has been blocked",
    "deactivated_workspace",
    "workspace has been deactivated",
    // A credential that is dead for good: Anthropic's 403 "OAuth token has been revoked.
    // Please obtain a new token.", "Account is no longer a member of the organization
    // associated with this token."; an account banned for its use (Gemini Code Assist "Gemini
    // has been disabled in this account for violation of Terms of Service").
    "token has been revoked",
    "token has expired",
    "no longer a member of the organization",
    "violation of terms",
    // NVIDIA's API catalogue answers a bad key with a 403 problem document whose detail is
    // "Authorization failed".
    "authorization failed",
    // Google: the request carried no identity it accepts.
    "unregistered callers",
    // Baidu Qianfan (error_code 110), Qwen: the access token derived from the key.
    "access token invalid",
    "access token expired",
    "invalid access token",
    // Baidu Qianfan's error_code 14 "IAM Certification failed" (the key pair is not the
    // account's).
    "iam certification failed",
    // An account locked for what it did: Zhipu 1121 "账户存违规行为，账号已被锁定" (a 429).
    "account has been locked",
    "account is locked",
    "账号已被锁定",
    "账户已被锁定",
];

const QUOTA: &[&str] = &[
    // Baidu Qianfan's error_code 19 "Open api total request limit reached" (a free allowance
    // used up, not a rate); Moonshot's "The number of files you have uploaded exceeded the
    // max file count" (until files are deleted).
    "total request limit",
    "max file count",
    "insufficient_quota",
    "exceeded your current quota",
    "exceeded current quota",
    "exceeded_current_quota",
    "insufficient balance",
    "insufficient_balance",
    "insufficient account balance",
    "insufficient credits",
    "insufficient_credits",
    "credit balance is too low",
    "can only afford",
    "billing_error",
    "billing details",
    "billing account",
    "billing_not_active",
    "enable billing",
    "spend limit",
    "spend_limit",
    "credit_balance_exhausted",
    // OpenAI `billing_hard_limit_reached`: "Billing hard limit has been reached" (the
    // account's own monthly cap).
    "billing hard limit",
    "billing_hard_limit",
    // Gemini Code Assist: `ErrorInfo.reason` `INSUFFICIENT_G1_CREDITS_BALANCE` behind the
    // generic "Resource has been exhausted (e.g. check quota)."
    "credits_balance",
    "credits balance",
    // Anthropic's 429 `rate_limit_error` "Extra usage is required for long context
    // requests": a paid add-on, not a window that lifts.
    "extra usage",
    // AI/ML API's 403 "You have exhausted the available … resource limit. Update your payment
    // method to continue using the service." (OpenAI's rate limits only suggest "adding a
    // payment method" to raise them, and name their wait.)
    "update your payment method",
    // Relays' own balance (one-api/new-api `insufficient_user_quota` "user [..] quota [..]
    // preConsumedQuota [..] is not enough"; SiliconFlow 30001 "your account balance is
    // insufficient"); plan walls ("You must subscribe to a plan in order to use models provided
    // by Zed"); usage-limit error types written as one word (OpenCode Zen
    // `FreeUsageLimitError`).
    "insufficient_user_quota",
    "insufficient user quota",
    "preconsumedquota",
    "balance is insufficient",
    "must subscribe to",
    "usagelimit",
    // LiteLLM's "Authentication Error, ExceededTokenBudget: Current spend for token: … Max
    // Budget for Token: …" (a 401); Higress "Request denied by ai quota check, No quota
    // left"; one-api "令牌 default（#12）额度已用尽" ("the token's quota is used up", a 401).
    "tokenbudget",
    "max budget",
    "no quota left",
    "额度已用尽",
    "额度不足",
    "spending limit",
    "usage limit",
    "payment required",
    "servicequotaexceededexception",
    "key limit exceeded",
    "monthly limit",
    "requires more credits",
    "used all available credits",
    "out of credits",
    "have any credits",
    "no credits remaining",
    "purchase credits",
    "paid_account_required",
    "paid account required",
    "credit limit",
    "credit_limit",
    "token quota",
    "free quota",
    "free_quota",
    "perday",
    "daily request",
    "no resource package",
    "daily free allocation",
    "arrearage",
    "overdue-payment",
    // A cap the account set for itself that pauses the model until someone lifts it
    // (Volcengine Ark `SetLimitExceeded` "… has reached the set inference limit for the
    // [model] model, and the model service has been paused").
    "setlimitexceeded",
    "set inference limit",
    "service has been paused",
    "account is in good standing",
    // Gateway spend budgets (LiteLLM `budget_exceeded`): spent until an admin or the budget
    // period resets it.
    "budget_exceeded",
    "budget exceeded",
    "budget has been exceeded",
    "exceeded budget",
    "exceeded your budget",
    "over budget",
    // Qwen OAuth / DashScope "Free allocated quota exceeded.": the free daily allowance is
    // spent until the next day (QwenLM/qwen-code#1742).
    "free allocated quota",
    // Arrears: Volcengine Ark `AccountOverdueError` "your account has an overdue balance".
    "overdue balance",
    "accountoverdue",
    // "Access denied due to overdue account" (an OpenAI-compatible provider's 403).
    "overdue account",
    "account is overdue",
    // Spent credit and paid-only models, in gateways' and aggregators' words: "credits
    // exhausted", "no usable credits", "top up your credits", "out of funds", a
    // `balance_depleted` code, "your plan does not include …", and a paid model behind the
    // free tier's wall (`model_not_supported_on_free_tier`, "not available on the free
    // tier"), which may arrive as a 403 or 404.
    "credits exhausted",
    "credits have been exhausted",
    "no usable credits",
    "top up your credits",
    "out of funds",
    "balance_depleted",
    "balance depleted",
    "plan does not include",
    "not supported on free tier",
    "not_supported_on_free_tier",
    "not available on the free tier",
    // Chinese: "insufficient balance", "please recharge", "in arrears".
    "余额不足",
    "请充值",
    "欠费",
];

/// A short usage window: quota words next to one of these describe a limit that lifts within
/// hours (a plan's five-hour window), so waiting or another key helps, as for a rate limit.
const SHORT_WINDOW: &[&str] = &[
    "5-hour",
    "5 hour",
    "/ 5h",
    "per hour",
    "hourly",
    "rolling window",
    // Ollama Cloud "you have reached your session usage limit" (a session lifts after a few
    // hours).
    "session usage limit",
    "session limit",
    // A limit per minute is a rate limit whatever the type says (Together's 429 "Your rate
    // limit is 60 queries per minute" comes with the type `credit_limit`).
    "per minute",
    // Together's 429 "Your rate limits are 600 RPM (10 QPS) and 180000 TPM (3000 TPS)", again
    // with the type `credit_limit`: units of a short window.
    "per second",
    "rpm",
    "tpm",
    "qps",
    // Chinese: "5 hours".
    "5 小时",
];

const OVERLOADED: &[&str] = &[
    "overloaded",
    "capacity_exceeded",
    "capacity exceeded",
    "over capacity",
    // "The requested model is temporarily at capacity upstream"; Novita's 429 "server
    // overload, please try again later" (type `server_overload`).
    "at capacity",
    "server overload",
    "server_overload",
    "capacity temporarily exceeded",
    "out of capacity",
    "modelnotreadyexception",
    "serviceunavailableexception",
    "temporarily unavailable",
    "no available capacity",
    // Chutes' 429 "Infrastructure is at maximum capacity, try again later"; "at full
    // capacity"; a model taken down for a while ("model is under maintenance", a 429).
    "maximum capacity",
    "full capacity",
    "under maintenance",
    "high demand",
    // Cerebras "We're experiencing high traffic right now! Please try again soon."; DeepInfra
    // "Model busy, retry later".
    "high traffic",
    "model busy",
    "model is busy",
    "server busy",
    "server is busy",
    "no slots available",
    "maximum pending requests",
    "more system memory",
    "out of memory",
    "not enough memory",
    "insufficient memory",
    // LM Studio's guardrail: "Model loading aborted due to insufficient system resources"
    // (a 404 from its just-in-time loading).
    "insufficient system resources",
    "utilization is high",
    "is currently loading",
    // A model still being loaded on a scaled-to-zero server (MLServer's 400 "Model
    // sklearn-iris is not ready yet."), and NVIDIA's hosted functions in a degraded state
    // ("Function id '…': DEGRADED function cannot be invoked", a 400): come back later.
    "not ready yet",
    "degraded function",
    // TGI: "Out of available cache blocks: asked 107, only 4 free blocks" (the paged KV cache
    // is full under load).
    "out of available cache blocks",
    "kv cache is full",
    // Ollama: "llama runner process has terminated: error loading model: unable to allocate
    // CUDA0 buffer" (the GPU has no room for the model).
    "unable to allocate",
    "failed to allocate",
    "cudamalloc failed",
    "no more data centers",
    // Gemini Code Assist "No capacity available for model … on the server"
    // (`MODEL_CAPACITY_EXHAUSTED`): the server's capacity, not the caller's quota.
    "no capacity available",
    "model_capacity_exhausted",
    // Chinese: "traffic too high", "busy", "overloaded".
    "访问量过大",
    "繁忙",
    "过载",
];

const RATE_LIMITED: &[&str] = &[
    "rate_limit_exceeded",
    "rate_limit_error",
    "rate_limit_reached",
    "rate limit",
    "ratelimit",
    "throttlingexception",
    "too many requests",
    "resource_exhausted",
    // Bedrock's throttle "Too many tokens, please wait before trying again" (alone, "too many
    // tokens" is a context complaint: see `CONTEXT_OVERFLOW`).
    "too many tokens, please wait",
    "qps",
    "request rate is too high",
    "max organization concurrency",
    // Limits per minute or day, throttles and concurrency caps named on a 400 by proxies and
    // providers that do not send a 429 (DashScope "Requests rate increased too quickly").
    "rate_limit",
    "throttled",
    "requests per minute",
    "tokens per minute",
    "requests per day",
    "rate increased too quickly",
    "too many concurrent requests",
    // Chinese: "rate limit", "request frequency".
    "速率限制",
    "请求频率",
];

/// Context overflow said plainly enough to trust on any status: some local servers answer it
/// with a 500 (llama.cpp before PR 16486, proxies in front of Anthropic).
const CONTEXT_STRONG: &[&str] = &[
    "context_length_exceeded",
    "maximum context length",
    "exceeds the available context size",
    "context size has been exceeded",
    "exceed_context_size",
    "prompt is too long",
    // vLLM "The decoder prompt (length 66501) is longer than the maximum model length of 65536"
    // (Xinference passes it on with a 500).
    "longer than the maximum model length",
    // llama.cpp: "context shift is disabled" (the reply would run past the context and the
    // server may not drop old tokens), a 500, or an SSE error event in a 200 stream.
    "context shift is disabled",
    // Kronk's in-band `server_error` "… the context window is full. Please reduce the input
    // size"; DeepInfra's 500 "Requested input length 99009 exceeds maximum input length
    // 8192".
    "context window is full",
    "exceeds maximum input length",
    "exceeds the maximum input length",
    // Chinese: "the input is over-long".
    "输入内容超长",
];

const CONTEXT_OVERFLOW: &[&str] = &[
    "context length",
    "context overflow",
    "context the overflows",
    "context window",
    "context_window",
    "context limit",
    "context size",
    "input is too long",
    "prompt too long",
    "prompt exceeds",
    "tokens too long",
    "tokens_too_long",
    "exceeds the maximum number of tokens",
    "maximum number of tokens allowed",
    "reduce the length of the messages",
    "maximum prompt length",
    "too large for model with",
    "exceeds the model's maximum",
    "input token count",
    // "maximum context" and "token limit" without "length" (gateways' own wordings), vLLM's
    // `max_model_len` and "maximum model length", llama.cpp's slot context (`n_ctx_slot`,
    // "truncating input"), "prompt length", Bedrock's "exceeds the maximum number of input
    // tokens", and the Chinese "exceeds the maximum length" and "context length".
    "maximum context",
    "token limit",
    "max_model_len",
    "maximum model length",
    "n_ctx_slot",
    "slot context",
    "truncating input",
    "prompt length",
    "input token",
    "maximum number of input tokens",
    "too many tokens",
    "超过最大长度",
    "上下文长度",
    "too many input tokens",
    // GitHub Copilot `model_max_prompt_tokens_exceeded`: "prompt token count of 514673
    // exceeds the limit of 128000".
    "prompt token count",
    "max_prompt_tokens",
    "input length",
    "maximum allowed length",
    "n_keep",
    "cannot truncate prompt",
    // Google AI Studio: "Cannot truncate to 89998, required 355220: text:355351".
    "cannot truncate to",
    "`inputs` tokens",
    "`inputs` must have less than",
    // TGI behind SageMaker (424 "Received client error (422) … inputs must have less than
    // 1024 tokens"); SiliconFlow 20015 "length of prompt_tokens (68957) must be less than
    // max_seq_len (65536)".
    "inputs must have less than",
    "max_seq_len",
    "maximum sequence length",
    // Moonshot "exceeded model token limit", "model max length exceeded".
    "model token limit",
    "model max length",
    // Cohere "too many tokens: total number of tokens in the prompt cannot exceed …" (the
    // colon tells it from Bedrock's throttling "Too many tokens, please wait").
    "too many tokens:",
    // A JSON-schema length check on the input (Bedrock "Malformed input request: expected
    // maxLength: 42000, actual: 46735").
    "expected maxlength",
    // Chinese: "over-long".
    "超长",
];

/// A complaint about the `max_tokens` parameter: a malformed request even when it names the
/// context window ("max_tokens must be less than or equal to 16384, … the context_window").
const MAX_TOKENS_PARAM: &[&str] = &[
    "max_tokens must be",
    "valid range of max_tokens",
    "maximum tokens you requested exceeds the model limit",
    "maximum allowed number of output tokens",
    "max_completion_tokens must be",
    "max tokens must be",
];

const CONTENT_FILTER: &[&str] = &[
    // OpenAI's `invalid_prompt` "Invalid prompt: we've limited access to this content for
    // safety reasons" (the type alone also covers prompts refused for their shape, such as
    // "repetitive patterns").
    "limited access to this content",
    // xAI's 403 "Content violates usage guidelines. … Failed check: SAFETY_CHECK_TYPE_BIO";
    // Imagen's 400 "The response is blocked, as it may violate our policies", "This prompt
    // contains sensitive words that violate Google's Responsible AI practices".
    "violates usage guidelines",
    "safety_check_type",
    "may violate our policies",
    "responsible ai practices",
    "sensitive words",
    "for safety reasons",
    // OpenAI's cyber-security wall: "This capability requires enrollment in Trusted Access for
    // Cyber" (the request's subject, not the key, is refused).
    "trusted access for cyber",
    "content_filter",
    "content filtering",
    "content_policy_violation",
    "responsibleaipolicyviolation",
    "content management policy",
    "content policy",
    "safety system",
    "usage policies",
    "flagged by",
    "flagged for",
    "prohibited_content",
    "blocked due to safety",
    // SAP AI Core's orchestration filter: "Content filtered due to safety violations".
    "content filtered",
    "safety violation",
    // Cloudflare AI Gateway's guardrails: 2016 "Prompt blocked due to security
    // configurations", 2017 "Response blocked …".
    "prompt blocked",
    "response blocked",
    "safety settings",
    "moderation",
    "inappropriate content",
    "data_inspection_failed",
    "new_sensitive",
    // OpenAI `invalid_prompt`: "your prompt was flagged as potentially violating our usage
    // policy"; Volcengine Ark `InputTextRiskDetection` / `OutputTextRiskDetection`: "the
    // input text includes sensitive content".
    "usage policy",
    // DeepSeek "Content Exists Risk"; Stability on Bedrock `invalid_prompts` (the prompt was
    // filtered).
    "content exists risk",
    // Gateways' guardrails (Portkey's 446 `hooks_failed` "The guardrail checks defined in the
    // config failed"; Bedrock's `guardrail_intervened`). Not the bare word: OpenRouter's "No
    // endpoints available matching your guardrail restrictions" is a routing wall.
    "guardrail checks",
    "guardrail_intervened",
    "guardrail intervened",
    "hooks_failed",
    "invalid_prompts",
    "potentially violating",
    "sensitive content",
    "textriskdetection",
    "imageriskdetection",
    // Chinese: "sensitive content".
    "敏感内容",
];

const MODEL_NOT_FOUND: &[&str] = &[
    "model_not_found",
    "model not found",
    "resourcenotfoundexception",
    "is not found for api version",
    "no endpoints found",
    "no endpoints available",
    "try pulling it first",
    "deploymentnotfound",
    "unknown model",
    "invalid model",
    "invalid_model",
    // FastChat's 40301 "Only … allowed now, your model …" (no worker serves it); Naver CLOVA
    // Studio's 40082 "model fade out" (support for the model has ended).
    "allowed now, your model",
    "model fade out",
    "is not a valid model",
    "no such model",
    "model_not_available",
    "model not exist",
    // Groq `model_decommissioned`: the model is gone for good.
    "model_decommissioned",
    // A model the server has not loaded: Jan/Cortex 409 "Model has not been loaded, please load
    // model into cortex.llamacpp"; Together "The dedicated endpoint for … is not running".
    "has not been loaded",
    "model not loaded",
    "is not running",
    // "The 'gpt-5.3-codex' model is not supported when using Codex with a ChatGPT account."
    "model is not supported",
    // Gateways and servers that do not serve the model named: LiteLLM "Invalid model name
    // passed in model=…", bedrock-access-gateway "Unsupported model …", llama.cpp's router
    // "model is not loaded", vLLM "LoRA adapter '…' was found but could not be loaded".
    "invalid model name",
    "unsupported model",
    // Hugging Face's router: "The requested model '…' is not supported by any provider you
    // have enabled", "Model not supported by provider together".
    "not supported by any provider",
    "not supported by provider",
    "is not loaded",
    "could not be loaded",
    // A retired deployment: Azure `ModelDeprecated` "The model associated with the deployment
    // is deprecated and no longer available for use" (a 410 through a proxy).
    "no longer available for use",
    "modeldeprecated",
    "been decommissioned",
    // Bedrock: the id names no model this account can invoke this way.
    "model identifier is invalid",
    "on-demand throughput",
    // Chinese: "the model does not exist" (Zhipu 1211).
    "模型不存在",
];

const PERMISSION: &[&str] = &[
    "permission_error",
    "permission_denied",
    "accessdeniedexception",
    "unsupported_country_region_territory",
    "region, or territory not supported",
    "do not have access",
    "don't have access",
    "does not have access",
    "not allowed to",
    "no permission to use",
    // Gemini "User location is not supported for the API use".
    "location is not supported",
    // OpenAI "Your organization must be verified to use the model / stream this model".
    "must be verified to",
    // Region walls of gateways (OpenRouter, opencode, Zed): "This model is not available in
    // your region / country".
    "not available in your region",
    "not available in your country",
    // Volcengine Ark `ModelNotOpen`: "Your account … has not activated the model …".
    "not activated the model",
    "modelnotopen",
    // Vertex: "User has requested a restricted HarmBlockThreshold setting BLOCK_NONE. You can
    // get access either (a) through an allowlist …": a setting the account is not entitled to.
    "allowlist",
    "whitelist",
    // Anthropic: "This credential is only authorized for use with Claude Code"; "The long
    // context beta is not yet available for this subscription"; OpenAI's 401 "You have
    // insufficient permissions for this operation. Missing scopes: api.responses.write";
    // Bedrock "Your account is not authorized to invoke this API operation", "Operation not
    // allowed".
    "only authorized for",
    "not yet available for",
    "insufficient permissions",
    "missing scopes",
    "not authorized to invoke",
    "operation not allowed",
    // Bedrock: "Access to Anthropic models is not allowed from unsupported countries,
    // regions, or territories"; OpenRouter's 404 "No allowed providers are available for the
    // selected model" (the account's provider settings exclude every one that serves it).
    "unsupported countries",
    "unsupported country",
    "no allowed providers",
    // A model closed to the key by the gateway's configuration: Portkey
    // `model_not_allowed_error` "Model … is not allowed for this integration", Kong's
    // "cannot use own model - must be: …".
    "model_not_allowed",
    "not allowed for this",
    "cannot use own model",
    // A token valid but without the scope the endpoint needs (GitHub Models' 401 "The
    // `models` permission is required to access this endpoint").
    "permission is required",
    "only master key",
    // Naver CLOVA Studio's 40170 "No subscription request history found. Please request a
    // subscription to use" (a 401: the account never enrolled in the service).
    "request a subscription",
    // A feature closed to the organization ("The access_programs parameter is not enabled
    // for this organization").
    "not enabled for this organization",
    // A model the workspace switched off (OpenCode Zen's 401 `ModelError` "Model is
    // disabled").
    "model is disabled",
    // GitHub Copilot: "The requested model is not available for integrator …" (the client's
    // integration may not use it).
    "not available for integrator",
    // GitHub's "Resource not accessible by integration": a token valid but without the
    // permission (GitHub Models from a workflow's token, a 401).
    "not accessible by integration",
    // Baidu Qianfan's error_code 6 "No permission to access data".
    "no permission to access",
    // Snowflake Cortex's "The model you requested is unavailable in your region".
    "unavailable in your region",
    "unavailable in your country",
    // A credential that lacks something the call needs: GitHub Copilot's 401 "Personal
    // Access Token does not have Copilot Requests permission".
    "token does not have",
    "key does not have",
    // Bedrock's Anthropic models ask for a use-case form first: "You have not filled out the
    // required use-case form for this model", "Model use case details have not been
    // submitted for this account".
    "use-case form",
    "use case form",
    "use case details",
];

/// Wording that says a model is missing, not merely closed to the caller. On a 404 it wins over
/// permission wording beside it: "The model `x` does not exist or you do not have access to it"
/// is a missing model.
/// Something said not to exist, a model or anything else: a model only where the status
/// says so (a 404 or 410) or a word beside it names one ([`MODEL_WORD`]). Groq's 400
/// "requested tool does not exist" is a request naming a tool it did not define.
const MISSING: &[&str] = &["does not exist"];

/// Words for what serves a request: the model, its deployment or endpoint, a version of it,
/// an adapter on it.
const MODEL_WORD: &[&str] = &[
    "model",
    "deployment",
    "engine",
    "endpoint",
    "version",
    "adapter",
];

const NOT_FOUND_WORD: &[&str] = &[
    "not found",
    "not_found",
    "notfound",
    "not exist",
    "no such",
    // Chinese: "does not exist".
    "不存在",
];

/// A request the server cannot take as written, said plainly enough to trust on any status:
/// llama.cpp's server answers "Unsupported param: tools" and "tools param requires --jinja
/// flag" with a 500. Sending it again cannot help.
///
/// Also a request sent to the wrong place: OpenAI's 404 "Invalid URL (POST
/// /v1/chat/completions/chat/completions)" (a base URL that already holds the path), "This
/// model is only supported in v1/responses and not in v1/chat/completions".
const UNSUPPORTED_PARAM: &[&str] = &[
    // LiteLLM "Invalid model name passed in model=None": the request carried no model (a body
    // it could not read, such as one sent without a JSON content type).
    "model=none",
    "unsupported param",
    "param requires",
    "invalid url (",
    "only supported in v1/",
    // OpenAI's 404 "This is a chat model and not supported in the v1/completions endpoint.
    // Did you mean to use v1/chat/completions?"; xAI's 404 "The requested resource was not
    // found. Please check the URL and try again." (a base URL without `/v1`).
    "not supported in the v1/",
    "check the url",
    // A parameter the server does not know, said plainly enough to trust on a gateway's 502;
    // a proxy's path allow-list ("Path not allowed": the request went to the wrong place).
    "unknown parameter",
    "unknown_parameter",
    "unrecognized request argument",
    "path not allowed",
    // xAI's 404 "No handler found on route. Please double check your URL"; OpenCode Go's 401
    // "Model … is not supported for format oa-compat" (the model is served on another API).
    "no handler found",
    "check your url",
    "not supported for format",
    // Fireworks: "model is missing conversation_config, please use /completions API instead".
    "use /completions",
    // Azure AI Foundry's 404 `api_not_supported` "Requested API is currently not supported"
    // (a Claude deployment asked on the chat completions route).
    "api_not_supported",
    "api is not supported",
    "api is currently not supported",
    // LM Studio's 200 `{"error":"Unexpected endpoint or method. (POST /chat/completions)"}`
    // (a base URL without `/v1`).
    "unexpected endpoint",
    // A request the loaded model cannot serve, said with a 500 by local servers: llama.cpp's
    // "image input is not supported - hint: … mmproj", Ollama's "this model is missing data
    // required for image input", llama.cpp's "Only one completion choice is allowed" (n > 1).
    "image input is not supported",
    "not support image",
    "required for image input",
    "only one completion choice",
    // No model named at all: Qianfan's 400 `invalid_model` "model is empty", OpenAI's "you
    // must provide a model parameter".
    "model is empty",
    "model is required",
    "must provide a model",
];

/// A model server that did not answer in time, said by the platform in front of it:
/// SageMaker's 424 "Your invocation timed out while waiting for a response from container
/// model".
const INVOCATION_TIMEOUT: &[&str] = &[
    "invocation timed out",
    "timed out while waiting for a response",
    // Vercel: a serverless function in front of the model ran past its limit
    // (`FUNCTION_INVOCATION_TIMEOUT`, relayed with a 504).
    "function_invocation_timeout",
];

/// A gateway that could not get an answer from the provider behind it, on a 4xx of its own:
/// Cloudflare AI Gateway's 400 code 2005 "Failed to get response from provider". The
/// provider side failed; the gateway's key and the request are fine.
const UPSTREAM_FAILED: &[&str] = &[
    "failed to get response from provider",
    // OpenCode Go's 403 "Upstream request failed: [server_error] Upstream response was not
    // valid JSON" (its other upstream failures carry the upstream's own words, which
    // decide); a Java backend's refused connection leaking through a 400 ("finishConnect(..)
    // failed: Connection refused: …").
    "upstream response was not valid json",
    "finishconnect(",
];

/// A relay with no channel (upstream route) that serves the requested model: one-api and
/// new-api answer "当前分组 default 下对于模型 gpt-4 无可用渠道" ("no available channel for
/// model … in group …") with a 503 and, in new-api, the code `model_not_found`. Another model
/// (or another relay) can help; waiting cannot.
///
/// The same for a local server with no model loaded at all (TabbyAPI's 503 "No models are
/// currently loaded."): someone must load one.
const NO_CHANNEL: &[&str] = &[
    "no models are currently loaded",
    "no model is currently loaded",
    "no models loaded",
    "no model loaded",
    // LocalAI: "failed to load model with internal loader: backend not found: …" (a 500: the
    // backend the model is configured for is not installed).
    "backend not found",
    "无可用渠道",
    "no available channel",
    "no available channels",
];

/// A limit counted per day: on a 429 that says nothing of when it lifts it will not lift
/// within minutes ("Daily limit reached for free requests"), so it is a quota wall; OpenAI's
/// "requests per day (RPD) … Please try again in 7m12s", a `Retry-After`, or OpenRouter's
/// `X-RateLimit-Reset` on its "free-models-per-day" name the end, and it stays a rate limit.
const DAILY: &[&str] = &[
    "per day",
    "per-day",
    "perday",
    "daily limit",
    "daily quota",
    "daily request limit",
    // Anthropic's 429 "Number of request tokens has exceeded your daily rate limit".
    "daily rate limit",
    "daily token limit",
    // Tokens or requests per day by their abbreviations (Moonshot "request reached
    // organization TPD rate limit, current: 1526210, limit: 1500000").
    "tpd rate limit",
    "rpd rate limit",
    "(tpd)",
    "(rpd)",
    "每日",
    "今日",
];

/// The markers `hints::message_wait_ms` looks for: when none occurs, the message names no
/// wait and is not read again.
const WAIT_PHRASE: &[&str] = super::hints::WAIT_MARKERS;

/// Markers of a challenge page, whatever the status.
///
/// Cloudflare's challenge pages load `/cdn-cgi/challenge-platform/h/…` and set
/// `window._cf_chl_opt`. Its bot-detection beacon (`/cdn-cgi/challenge-platform/scripts/jsd/
/// main.js`) rides on every page it serves, an nginx "413 Request Entity Too Large" too, so
/// it marks no challenge.
const WAF_CHALLENGE: &[&str] = &[
    "challenge-platform/h/",
    "_cf_chl_opt",
    "enable javascript and cookies",
    "attention required",
    "just a moment",
    "captcha",
    "_incapsula_resource",
    // Alibaba Cloud WAF's block page (errors.aliyun.com, with `block_message` and
    // `block_traceid` slots), seen as a 405 in front of Z.ai.
    "block_message",
];

/// Markers of a blocking intermediary, trusted only on a 403 or 429 (a Cloudflare-branded
/// 502 page is a real upstream failure, not a block).
const WAF_BLOCK: &[&str] = &[
    // A relay's plain "Your request was blocked."; Cloudflare's plain-text firewall errors
    // ("error code: 1010", a banned client signature; 1020, a firewall rule).
    "request was blocked",
    // Cloudflare's block page: "Sorry, you have been blocked".
    "you have been blocked",
    "error code: 10",
    "cloudflare",
    "access denied",
    "request blocked",
    "incapsula",
    "the request could not be satisfied",
    "web application firewall",
];

const PAYLOAD: &[&str] = &[
    // Caps on what one request may carry: Moonshot's "File size is too large, max file size
    // is 100MB", Naver CLOVA Studio's 40003 "Image limit exceeded".
    "file size is too large",
    "file is too large",
    "file too large",
    "image limit exceeded",
    "too many images",
    "request_too_large",
    "payload too large",
    "request entity too large",
    "body too large",
    "request too large",
    // OpenAI embeddings: "Requested 319487 tokens, max 300000 tokens per request".
    "max_tokens_per_request",
    "tokens per request",
    // llama.cpp's embeddings: "input (596 tokens) is too large to process. increase the
    // physical batch size" (a 500; the input must fit one batch, smaller than the context).
    "too large to process",
    // Attachments over a per-request cap: Anthropic "image exceeds 5 MB maximum", "A maximum
    // of 100 PDF pages may be provided".
    "image exceeds",
    "image is too large",
    "image too large",
    "image_too_large",
    "image size exceeds",
    "image dimensions exceed",
    "dimensions exceed max allowed size",
    "max allowed size",
    // A gateway's cap on the request's bytes: "exceeds maximum allowed content length.
    // RequestSize(bytes): 34021227, Limit(bytes): 33554432".
    "allowed content length",
    // Gemini's 400 "Request payload size exceeds the limit: 314572800 bytes."
    "payload size exceeds",
    "file is too large",
    "file too large",
    "pdf pages",
    // Bedrock's InvokeModel: "Value at 'body' failed to satisfy constraint: Member must have
    // length less than or equal to 25000000" (the request body itself is over the cap).
    "value at 'body' failed to satisfy constraint",
    // TensorRT-LLM: "The sum of prompt length (38049), query length (0) should not exceed
    // max_num_tokens (32768)" (a per-step token budget, below the context window).
    "max_num_tokens",
];

/// A relay's own word filter, trusted on any status: new-api and one-api answer a 500
/// `sensitive_words_detected` "sensitive words detected" when their list matches the prompt.
///
/// Also a gateway's guardrail that refused the prompt, whatever status the gateway gave it
/// (LiteLLM's 500 "Bedrock guardrail failed: I cannot respond to requests containing
/// personally identifiable information").
const CONTENT_STRONG: &[&str] = &[
    "sensitive_words_detected",
    "sensitive words detected",
    "guardrail failed",
    "guardrail intervened",
    // LiteLLM's guardrails: Lakera's "Violated content safety policy", Aporia's "Violated
    // guardrail policy".
    "content safety policy",
    "guardrail policy",
];

/// Words of a refusal ("Request blocked by Noma guardrail", "Prompt blocked due to security
/// configurations"): with [`GUARDRAIL`] a content filter on any status.
const BLOCKED: &[&str] = &["blocked by", "prompt blocked", "response blocked"];

/// A gateway's guardrail named beside a refusal. Alone it is no refusal: Bedrock's "The
/// guardrail identifier is invalid" is a malformed request.
const GUARDRAIL: &[&str] = &["guardrail"];

/// A usage limit, as opposed to spent money: on a 402 or a 429 it is a wall only when nothing
/// says it lifts by itself (see [`TRANSIENT_SIGNAL`] and `usage_window`).
const USAGE_LIMIT: &[&str] = &["usage limit"];

/// Looser words for a usage limit, trusted only on a 402: on a 429 "quota" and "limit
/// exceeded" come with every rate limit ("Rate limit exceeded").
const USAGE_LIMIT_LOOSE: &[&str] = &["quota", "limit exceeded"];

/// Words that say a usage limit lifts by itself: a 402 "usage limit reached, resets at 14:00
/// UTC" is a window to wait out (or another key), not an account to top up.
const TRANSIENT_SIGNAL: &[&str] = &[
    "try again",
    "retry",
    "resets at",
    "reset in",
    "resets in",
    "wait",
    "requests remaining",
    "periodic",
    "window",
];

/// Words that say something is over a limit. On a 5xx, context wording counts only beside
/// one of these ("the prompt exceeds the context window" is an overflow; "crashed while
/// computing the context window" is the server's failure).
const EXCESS: &[&str] = &[
    "exceed",
    "too long",
    "too large",
    "too many",
    "maximum",
    "limit",
    "is full",
    "overflow",
    "greater than",
    "more than",
    "larger than",
    "longer than",
];

/// A window longer than a day: a usage limit that lifts next week or next month is a wall
/// for a retry loop, whatever it says of trying again.
const LONG_WINDOW: &[&str] = &["month", "week", "tomorrow", "next day"];

/// Money: a 402 that speaks of it is a billing wall, whatever else it says.
const MONEY: &[&str] = &[
    "credit", "upgrade", "balance", "billing", "payment", "funds", "top up", "余额", "充值", "欠费",
];

/// The generic 500 page of Werkzeug (Flask), which model containers answer with when their
/// code fails: "… Either the server is overloaded or there is an error in the application."
/// It names no overload of its own.
const GENERIC_PAGE: &[&str] = &["either the server is overloaded or there is an error"];

/// A 400 that names when to come back is a throttle, as proxies that do not send a 429 say it.
const RETRY_LATER: &[&str] = &["try again in", "please retry after"];

/// A valid key that may not do this: these win over authentication wording beside them
/// (LiteLLM's 401 "Authentication Error, Only master key can be used to …", GitHub's 401 "The
/// `models` permission is required").
const KEY_RESTRICTED: &[&str] = &[
    // "Personal Access Token does not have Copilot Requests permission" (a 401).
    "token does not have",
    "key does not have",
    "not accessible by integration",
    "only master key",
    "request a subscription",
    "permission is required",
    "missing scopes",
    "insufficient permissions",
];

/// A family of phrases; each phrase list above is one family.
#[derive(Copy, Clone)]
enum Family {
    KeyRejected,
    Quota,
    ShortWindow,
    Overloaded,
    RateLimited,
    ContextStrong,
    ContextOverflow,
    MaxTokensParam,
    ContentFilter,
    ModelNotFound,
    Permission,
    WafChallenge,
    WafBlock,
    Payload,
    WaitPhrase,
    // Markers the rules look at, found in the same pass instead of one search each.
    OpenrouterWrapped,
    GatewayWrapped,
    GoogleExhausted,
    ResourceExhaustedText,
    QuotaWord,
    GoogleWall,
    PerMinute,
    Billing,
    CheckPlan,
    UpstreamSaturated,
    NotFoundWord,
    NoChannel,
    Daily,
    UnsupportedParam,
    InvocationTimeout,
    UpstreamFailed,
    UsageLimit,
    TransientSignal,
    Money,
    GenericPage,
    RetryLater,
    KeyRestricted,
    LongWindow,
    UsageLimitLoose,
    Excess,
    ContentStrong,
    Missing,
    ModelWord,
    Blocked,
    Guardrail,
    PercentSpace,
}

const FAMILIES: [(Family, &[&str]); 46] = [
    (Family::KeyRejected, KEY_REJECTED),
    (Family::Quota, QUOTA),
    (Family::ShortWindow, SHORT_WINDOW),
    (Family::Overloaded, OVERLOADED),
    (Family::RateLimited, RATE_LIMITED),
    (Family::ContextStrong, CONTEXT_STRONG),
    (Family::ContextOverflow, CONTEXT_OVERFLOW),
    (Family::MaxTokensParam, MAX_TOKENS_PARAM),
    (Family::ContentFilter, CONTENT_FILTER),
    (Family::ModelNotFound, MODEL_NOT_FOUND),
    (Family::Permission, PERMISSION),
    (Family::WafChallenge, WAF_CHALLENGE),
    (Family::WafBlock, WAF_BLOCK),
    (Family::Payload, PAYLOAD),
    (Family::WaitPhrase, WAIT_PHRASE),
    (Family::OpenrouterWrapped, &["provider returned error"]),
    // A gateway relaying its upstream's limit: "Error from provider (…)"; 9Router's
    // "[nvidia/model] [429]: …"; CLIProxyAPI's `model_cooldown` "All credentials for model …
    // are cooling down via provider …".
    (
        Family::GatewayWrapped,
        &[
            "error from provider (",
            // claude-code-router: "Error from provider(429): {…RESOURCE_EXHAUSTED…}".
            "error from provider(",
            "] [429]",
            "are cooling down via provider",
        ],
    ),
    (Family::GoogleExhausted, &["resource_exhausted"]),
    (Family::ResourceExhaustedText, &["resource exhausted"]),
    (Family::QuotaWord, &["quota"]),
    (
        Family::GoogleWall,
        // Cloud Code's `ErrorInfo.reason` `QUOTA_EXHAUSTED` (a reset hours or days away, even
        // with a `RetryInfo`), as opposed to its short `RATE_LIMIT_EXCEEDED`.
        &[
            "per day",
            "perday",
            "limit: 0",
            "free quota tier",
            "quota_exhausted",
            "credits_balance",
        ],
    ),
    (Family::PerMinute, &["perminute"]),
    (Family::Billing, &["billing"]),
    (Family::CheckPlan, &["check your plan and billing details"]),
    // one-api and new-api rewrite an upstream 429 as "当前分组上游负载已饱和，请稍后再试"
    // ("the group's upstream load is saturated, try again later").
    // A gateway's own code for it: `upstream_rate_limited` "upstream rate limited".
    (
        Family::UpstreamSaturated,
        &[
            "上游负载已饱和",
            "upstream_rate_limited",
            "upstream rate limited",
        ],
    ),
    (Family::NotFoundWord, NOT_FOUND_WORD),
    (Family::NoChannel, NO_CHANNEL),
    (Family::Daily, DAILY),
    (Family::UnsupportedParam, UNSUPPORTED_PARAM),
    (Family::InvocationTimeout, INVOCATION_TIMEOUT),
    (Family::UpstreamFailed, UPSTREAM_FAILED),
    (Family::UsageLimit, USAGE_LIMIT),
    (Family::TransientSignal, TRANSIENT_SIGNAL),
    (Family::Money, MONEY),
    (Family::GenericPage, GENERIC_PAGE),
    (Family::RetryLater, RETRY_LATER),
    (Family::KeyRestricted, KEY_RESTRICTED),
    (Family::LongWindow, LONG_WINDOW),
    (Family::UsageLimitLoose, USAGE_LIMIT_LOOSE),
    (Family::Excess, EXCESS),
    (Family::ContentStrong, CONTENT_STRONG),
    (Family::Missing, MISSING),
    (Family::ModelWord, MODEL_WORD),
    (Family::Blocked, BLOCKED),
    (Family::Guardrail, GUARDRAIL),
    // A percent-encoded space: the text is decoded and scanned again (see `classify_http`).
    (Family::PercentSpace, &["%20"]),
];

// Each family is one bit of a `u64`.
const _: () = assert!(
    FAMILIES.len() <= 64,
    "every family needs a bit of Signals' u64"
);

/// Which families of phrases occur in a text: found in one pass over it.
#[derive(Copy, Clone, Default)]
pub(crate) struct Signals(u64);

/// The phrase automaton as a dense transition table: every phrase of every family, matched
/// with overlaps (each occurrence of each phrase counts), ASCII letters in either case.
///
/// It is built once per process from aho-corasick's noncontiguous NFA by walking that
/// automaton's states through its public interface (its transitions follow failure links).
/// The bytes are folded into classes (an upper-case ASCII letter falls in its lower-case
/// letter's class, so the text is never lowercased). A scan is one lookup of the byte's
/// column and one table load per byte; the table load is the only step that waits for the
/// previous byte, so it is kept as short as it can be:
///
/// * the table is stored column by column (one column per class), so the column's start is
///   found from the byte alone, off the chain of dependent loads, and the next state is
///   found by indexing that column with the current state;
/// * entries are `u16` state numbers (half the memory of row offsets, so more of the table
///   stays in cache), with no flag bits to mask off;
/// * the table has a fixed power-of-two length, so an index masked to it is known to be in
///   bounds and no bounds check sits on the chain (the pages past the last column are never
///   written, so they take no memory);
/// * the states that end a phrase are numbered last, so "did this byte end a phrase" is a
///   comparison with [`Phrases::first_match`], which nothing on the chain waits for.
///
/// The other states are numbered in breadth-first order, so the shallow states that plain
/// text keeps returning to sit together at the head of every column.
struct Phrases {
    /// For each byte, where its class's column starts in [`Phrases::next`].
    column: [u32; 256],
    /// `next[column + state]`: the state after reading a byte of that column's class. The
    /// table is [`TABLE`] entries long, more than the columns fill, so that an index masked
    /// to [`TABLE`] needs no bounds check.
    next: Box<[u16; TABLE]>,
    /// The states numbered this or higher end at least one phrase.
    first_match: u32,
    /// For each state, the families of the phrases it ends (none before `first_match`).
    /// Indexed by the state itself, so that nothing is computed from the state on the way.
    families: Vec<u64>,
    /// For each state, how many bytes it stands for: the length of the longest end of the
    /// text read so far that begins some phrase. The state after a text depends only on that
    /// many last bytes (see [`Phrases::scan_runs`]).
    depth: Vec<u8>,
}

/// The state before any byte is read.
const START: u32 = 0;

/// How many entries [`Phrases::next`] has room for: a power of two, at least the number of
/// states times the number of byte classes (about 700 000 today; building the table checks
/// it).
const TABLE: usize = 1 << 20;

/// The shortest text scanned by interleaved runs (see [`Phrases::scan_runs`]); a
/// shorter one is scanned by one run, the parts being too short to gain.
const SPLIT_MIN: usize = 24;

impl Phrases {
    fn get() -> &'static Phrases {
        static PHRASES: OnceLock<Phrases> = OnceLock::new();
        PHRASES.get_or_init(Phrases::build)
    }

    fn build() -> Phrases {
        // A phrase in several families (or listed twice) is one pattern with the bits of
        // all of them.
        let mut phrases: Vec<&str> = Vec::new();
        let mut bits_of: Vec<u64> = Vec::new();
        for (family, list) in FAMILIES {
            for phrase in list {
                let bit = 1u64 << family as u32;
                match phrases.iter().position(|p| p == phrase) {
                    Some(i) => bits_of[i] |= bit,
                    None => {
                        phrases.push(phrase);
                        bits_of.push(bit);
                    }
                }
            }
        }
        // Standard semantics: a state's matches include those of its failure chain, so every
        // phrase ending at a position is reported there, as an overlapping search reports it.
        let nfa = NFA::builder()
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build(&phrases)
            .expect("the phrase lists are valid patterns");
        let start = nfa
            .start_state(Anchored::No)
            .expect("the automaton is built for unanchored searches");

        // Byte classes: a byte that occurs in no phrase (after folding an upper-case ASCII
        // letter to lower case) leads every state back to the start, like every other such
        // byte, so they share class 0; every byte that occurs in a phrase has a class of its
        // own, shared with its upper-case letter. `representatives` holds one byte per class.
        let mut in_a_phrase = [false; 256];
        for phrase in &phrases {
            for &b in phrase.as_bytes() {
                in_a_phrase[usize::from(b)] = true;
            }
        }
        let folded = |b: usize| usize::from((b as u8).to_ascii_lowercase());
        let mut representatives: Vec<u8> = Vec::new();
        if let Some(outside) = (0..256).find(|&b| !in_a_phrase[folded(b)]) {
            representatives.push(outside as u8);
        }
        let mut class_of_folded = [u8::MAX; 256];
        let mut class = [0u8; 256];
        for (byte, slot) in class.iter_mut().enumerate() {
            let f = folded(byte);
            if !in_a_phrase[f] {
                continue;
            }
            if class_of_folded[f] == u8::MAX {
                class_of_folded[f] =
                    u8::try_from(representatives.len()).expect("at most 256 classes");
                representatives.push(f as u8);
            }
            *slot = class_of_folded[f];
        }

        // Number the states reachable from the start in breadth-first order, with each one's
        // row (the next state's number for each class), depth and the families of the
        // phrases it ends. The first path to a state is a shortest one, and the shortest text
        // that leads to a state is the phrase prefix it stands for, so a state's depth is
        // its parent's plus one. The automaton's state ids are small numbers: they index a
        // vector, grown as needed.
        let mut number = vec![u32::MAX; nfa.memory_usage() / 4 + 1];
        let mut states: Vec<StateID> = vec![start];
        number[start.as_usize()] = 0;
        let mut depth: Vec<usize> = vec![0];
        let mut rows: Vec<u32> = Vec::new();
        let mut families: Vec<u64> = Vec::new();
        let mut k = 0;
        while k < states.len() {
            let sid = states[k];
            for &byte in &representatives {
                let next = nfa.next_state(Anchored::No, sid, byte);
                if next.as_usize() >= number.len() {
                    number.resize(next.as_usize() + 1, u32::MAX);
                }
                if number[next.as_usize()] == u32::MAX {
                    number[next.as_usize()] = states.len() as u32;
                    states.push(next);
                    depth.push(depth[k] + 1);
                }
                rows.push(number[next.as_usize()]);
            }
            let mut bits = 0;
            if nfa.is_match(sid) {
                for i in 0..nfa.match_len(sid) {
                    bits |= bits_of[nfa.match_pattern(sid, i).as_usize()];
                }
            }
            families.push(bits);
            k += 1;
        }
        let count = states.len();
        let stride = representatives.len();
        assert!(
            count <= usize::from(u16::MAX),
            "the state numbers fit a u16"
        );
        assert_eq!(families[0], 0, "the start state ends no phrase");

        // Renumber: the states that end no phrase first, in the order found (the start
        // stays 0), then those that end one.
        let mut renumber = vec![0u16; count];
        let mut order: Vec<usize> = (0..count).filter(|&s| families[s] == 0).collect();
        let first_match = order.len() as u16;
        order.extend((0..count).filter(|&s| families[s] != 0));
        for (new, &old) in order.iter().enumerate() {
            renumber[old] = new as u16;
        }
        assert!(
            count * stride <= TABLE,
            "the transition table ({count} states × {stride} classes) fits TABLE"
        );
        let mut next: Box<[u16; TABLE]> = vec![0u16; TABLE]
            .into_boxed_slice()
            .try_into()
            .expect("the vector has TABLE entries");
        for (new, &old) in order.iter().enumerate() {
            for c in 0..stride {
                next[c * count + new] = renumber[rows[old * stride + c] as usize];
            }
        }
        let mut column = [0u32; 256];
        for (slot, &c) in column.iter_mut().zip(class.iter()) {
            *slot = (usize::from(c) * count) as u32;
        }
        Phrases {
            column,
            next,
            first_match: u32::from(first_match),
            families: order.iter().map(|&old| families[old]).collect(),
            depth: order
                .iter()
                .map(|&old| u8::try_from(depth[old]).expect("phrases are shorter than 256 bytes"))
                .collect(),
        }
    }

    /// The state after reading `byte` in `state`.
    #[inline(always)]
    fn step(&self, state: u32, byte: u8) -> u32 {
        // The state is kept as a u32 so that nothing re-extends it between loads.
        let column = self.column[usize::from(byte)] as usize;
        u32::from(self.next[(column + state as usize) & (TABLE - 1)])
    }

    /// The families of the phrases that `state` ends (none for most states).
    #[inline(always)]
    fn ended(&self, state: u32) -> u64 {
        if state >= self.first_match {
            self.families[state as usize]
        } else {
            0
        }
    }

    /// Scans `text` from `state` with one run of the automaton: the state after it and the
    /// families of the phrases that end in it.
    fn scan_single(&self, mut state: u32, text: &[u8]) -> (u32, u64) {
        let mut bits = 0;
        for &b in text {
            state = self.step(state, b);
            bits |= self.ended(state);
        }
        (state, bits)
    }

    /// What [`Phrases::scan_single`] returns, found by [`RUNS`] runs interleaved in one
    /// loop, so that the processor works on independent chains of table loads at once
    /// (each load waits only for the one before it in its own run). Short texts are scanned
    /// by one run.
    fn scan(&self, state: u32, text: &[u8]) -> (u32, u64) {
        if text.len() < SPLIT_MIN {
            return self.scan_single(state, text);
        }
        self.scan_runs::<RUNS>(state, text)
    }

    /// [`Phrases::scan_single`] by `K` interleaved runs, the text cut into `K` parts.
    ///
    /// The first run reads the first part from `state`; each other run reads its part from
    /// the start state. Such a run only ever reports real occurrences (its state always
    /// stands for a real phrase prefix just read), but it misses a phrase begun before its
    /// part. So, after the loop, the run that is known to be in the true state reads on into
    /// the next part until that part's run is sure to be in the true state too: the true
    /// state stands for the longest end of the text read so far that begins a phrase (its
    /// depth), so once the true state's depth is no greater than the number of bytes read
    /// into the part, the part's run (which has read all those bytes from the start state)
    /// is in the same state, and from there on the two agree. Every phrase ending up to that
    /// point was seen by a run in the true state, every one ending after it by the part's
    /// run, and the last part's run ends in the true state. The reading on is short: it
    /// stops as soon as the text stops continuing a phrase, and at the latest after the
    /// longest phrase's length. When a phrase prefix runs through a whole part, the true
    /// run simply reads on into the part after it.
    fn scan_runs<const K: usize>(&self, state: u32, text: &[u8]) -> (u32, u64) {
        let part = text.len() / K;
        // Part k is `text[k * part..(k + 1) * part]`, the last one to the end of the text.
        let bound = |k: usize| if k == K { text.len() } else { k * part };
        let mut runs = [START; K];
        runs[0] = state;
        let mut bits = 0;
        // Each part sliced to exactly `part` bytes, so that indexing it with `i < part`
        // needs no bounds check in the loop.
        let parts: [&[u8]; K] = std::array::from_fn(|k| &text[k * part..(k + 1) * part]);
        for i in 0..part {
            for (run, bytes) in runs.iter_mut().zip(&parts) {
                *run = self.step(*run, bytes[i]);
                bits |= self.ended(*run);
            }
        }
        // The last part holds up to K - 1 bytes more.
        for &b in &text[K * part..] {
            runs[K - 1] = self.step(runs[K - 1], b);
            bits |= self.ended(runs[K - 1]);
        }
        // `truth` is the true state after `text[..at]`.
        let (mut truth, mut at) = (runs[0], bound(1));
        for (k, &run) in runs.iter().enumerate().skip(1) {
            let (start, end) = (bound(k), bound(k + 1));
            while self.depth[truth as usize] as usize > at - start && at < end {
                truth = self.step(truth, text[at]);
                bits |= self.ended(truth);
                at += 1;
            }
            if self.depth[truth as usize] as usize <= at - start {
                // Part k's run is in the true state from `at` to the part's end.
                (truth, at) = (run, end);
            }
        }
        (truth, bits)
    }
}

/// How many runs of the automaton [`Phrases::scan`] interleaves. One run waits about a
/// load's latency per byte; two or more overlap their waits. Three measured a little faster
/// than two in wall time (more instructions, fewer cycles; see `docs/BENCHMARKS.md`), four
/// no faster than three.
const RUNS: usize = 3;

/// How many bytes of text a [`Scanner`] gathers before scanning them: enough for the error
/// fields of a typical error body, so that their pieces (often a few bytes each) are scanned
/// as one text, long enough to be split between two runs.
const GATHER: usize = 512;

/// Finds phrase families in a text given in pieces, as if the pieces were one string: short
/// pieces are gathered into one buffer and scanned together, and the automaton's state runs
/// on from one scan to the next.
pub(crate) struct Scanner {
    phrases: &'static Phrases,
    state: u32,
    bits: u64,
    gathered: [u8; GATHER],
    len: usize,
}

impl Scanner {
    pub(crate) fn new() -> Scanner {
        Scanner {
            phrases: Phrases::get(),
            state: START,
            bits: 0,
            gathered: [0; GATHER],
            len: 0,
        }
    }

    /// Scans the next piece of the text.
    pub(crate) fn feed(&mut self, piece: &str) {
        let bytes = piece.as_bytes();
        if bytes.len() <= GATHER - self.len {
            self.gathered[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
            return;
        }
        self.flush();
        if bytes.len() <= GATHER / 2 {
            self.gathered[..bytes.len()].copy_from_slice(bytes);
            self.len = bytes.len();
        } else {
            self.scan(bytes);
        }
    }

    fn scan(&mut self, text: &[u8]) {
        let (state, bits) = self.phrases.scan(self.state, text);
        self.state = state;
        self.bits |= bits;
    }

    /// Scans what was gathered.
    fn flush(&mut self) {
        let (state, bits) = self.phrases.scan(self.state, &self.gathered[..self.len]);
        self.state = state;
        self.bits |= bits;
        self.len = 0;
    }

    /// The families found in the whole text.
    pub(crate) fn finish(mut self) -> Signals {
        self.flush();
        Signals(self.bits)
    }
}

impl Signals {
    /// Scans `text` once for every phrase of every family (ASCII letters in any case).
    pub(crate) fn scan(text: &str) -> Signals {
        let mut scanner = Scanner::new();
        scanner.feed(text);
        scanner.finish()
    }

    fn has(self, family: Family) -> bool {
        self.0 & (1 << family as u32) != 0
    }

    /// True when the text holds a phrase that can introduce a wait ("try again in …").
    pub(crate) fn names_a_wait(self) -> bool {
        self.has(Family::WaitPhrase)
    }

    /// True when the text holds a percent-encoded space (`%20`).
    pub(crate) fn percent_encoded(self) -> bool {
        self.has(Family::PercentSpace)
    }
}

/// Decides the reason. `sig` holds the phrase families found in the lowercase search text
/// (error fields, or the body when it is not JSON); `status` is 0 for an in-band error that
/// carried no status of its own;
/// `aws_code` is an AWS-style error code (`x-amzn-errortype`, an event-stream
/// `:exception-type`, or a body's `__type`), already stripped of its namespace;
/// `names_its_end` tells whether the answer says when requests will be taken again (a wait
/// hint in a header, the body or the message, or an absolute reset time); it is asked only
/// when a rule needs it.
pub(crate) fn decide(
    provider: Provider,
    status: u16,
    sig: Signals,
    html: bool,
    fields: Option<&ErrorFields>,
    aws_code: Option<&str>,
    names_its_end: &dyn Fn() -> bool,
) -> Reason {
    if html {
        return html_page(status, sig);
    }
    // A plain-text 403 (no JSON error, no page) in a firewall's words.
    if status == 403 && fields.is_none() && sig.has(Family::WafBlock) {
        return Reason::BlockedByWaf;
    }
    // Redirects and proxy authentication come from the path to the API, not from the API.
    if matches!(status, 300..=399 | 407) {
        return by_status(status);
    }
    let server = matches!(status, 500..=599);
    // A relay with no route for the model says so with a 503: the model, not the server.
    if sig.has(Family::NoChannel) && matches!(status, 400..=599 | 0) {
        return Reason::ModelNotFound;
    }
    if let Some(reason) = aws_code.and_then(aws_reason) {
        return match reason {
            // Status first: a 5xx never changes key state.
            Reason::KeyRejected | Reason::PermissionDenied | Reason::QuotaExhausted if server => {
                by_status(status)
            }
            Reason::ServerError if sig.has(Family::Overloaded) => Reason::Overloaded,
            // Bedrock's ThrottlingException "Too many tokens per day": a daily allowance
            // spent, with no word of when it lifts, lifts tomorrow, as on any other 429.
            Reason::RateLimited if !server && sig.has(Family::Daily) && !names_its_end() => {
                Reason::QuotaExhausted
            }
            other => other,
        };
    }
    if sig.has(Family::KeyRejected) && !server && !sig.has(Family::KeyRestricted) {
        // An aggregator's wrapped upstream auth failure is the upstream's problem: the
        // aggregator's own key is fine, and another route or target can succeed.
        if wrapped_upstream(provider, sig, fields) {
            return Reason::ServerError;
        }
        return Reason::KeyRejected;
    }
    let quota = (sig.has(Family::Quota) || google_quota_wall(provider, sig))
        && !server
        && !gemini_short_window(provider, sig, fields);
    if quota && sig.has(Family::ShortWindow) {
        return Reason::RateLimited;
    }
    if status == 402 && usage_window(sig, true) {
        return Reason::RateLimited;
    }
    if status == 429 || (status == 0 && sig.has(Family::RateLimited)) {
        return too_many_requests(provider, sig, quota, fields, names_its_end);
    }
    if quota {
        return Reason::QuotaExhausted;
    }
    let overloaded = sig.has(Family::Overloaded) && !sig.has(Family::GenericPage);
    if overloaded || status == 529 || status == 498 {
        return Reason::Overloaded;
    }
    // Context wording is trusted on a 5xx too when it says something is over a limit (local
    // servers and proxies answer an overflow with a 500), but not beside a rate limit ("Too
    // many tokens, please wait"), a complaint about `max_tokens`, or a cap below the window
    // (TensorRT-LLM's "prompt length … should not exceed max_num_tokens").
    let weak_context = sig.has(Family::ContextOverflow)
        && (!server || sig.has(Family::Excess))
        && !sig.has(Family::MaxTokensParam)
        && !sig.has(Family::RateLimited)
        && !sig.has(Family::Payload);
    if sig.has(Family::ContextStrong) || weak_context {
        return Reason::ContextOverflow;
    }
    let guardrail_refused = sig.has(Family::Blocked) && sig.has(Family::Guardrail);
    if (sig.has(Family::ContentFilter) && !server)
        || sig.has(Family::ContentStrong)
        || guardrail_refused
    {
        return Reason::ContentFilter;
    }
    if sig.has(Family::UnsupportedParam) {
        return Reason::MalformedRequest;
    }
    if sig.has(Family::InvocationTimeout) {
        return Reason::Timeout;
    }
    if sig.has(Family::UpstreamFailed) {
        return Reason::ServerError;
    }
    // A complaint about `max_tokens` is never a rate limit (Cohere "too many tokens: max tokens
    // must be …").
    let throttle = sig.has(Family::RateLimited) || (status == 400 && sig.has(Family::RetryLater));
    if throttle && matches!(status, 400 | 403 | 0) && !sig.has(Family::MaxTokensParam) {
        // Bedrock has sent ThrottlingException with a 400; some proxies do the same.
        return Reason::RateLimited;
    }
    // A 404 or 451 that names a wall in front of an existing model (verification, region,
    // activation) is a permission problem; a 404 that says the model is missing stays one.
    let permission_status = match status {
        401 | 403 | 451 | 0 => true,
        400 | 404 => !sig.has(Family::NotFoundWord),
        _ => false,
    };
    if sig.has(Family::Permission) && permission_status {
        return Reason::PermissionDenied;
    }
    let missing_model =
        sig.has(Family::Missing) && (matches!(status, 404 | 410) || sig.has(Family::ModelWord));
    if (sig.has(Family::ModelNotFound) || missing_model)
        && matches!(status, 400 | 403 | 404 | 409 | 410 | 422 | 0)
    {
        return Reason::ModelNotFound;
    }
    if sig.has(Family::Payload) {
        return Reason::PayloadTooLarge;
    }
    by_status(status)
}

/// The AWS error codes [`aws_reason`] knows, with their reasons. Sorted by length (checked
/// at compile time in `aws_reason`): the names of a code's length are found by a binary
/// search.
const AWS_CODES: &[(&str, Reason)] = &[
    ("SlowDown", Reason::RateLimited),
    ("Throttling", Reason::RateLimited),
    ("ModelError", Reason::ServerError),
    ("RequestTimeout", Reason::Timeout),
    ("InternalFailure", Reason::ServerError),
    ("RequestThrottled", Reason::RateLimited),
    ("ThrottledException", Reason::RateLimited),
    ("ServiceUnavailable", Reason::Overloaded),
    ("ThrottlingException", Reason::RateLimited),
    ("ModelErrorException", Reason::ServerError),
    ("IncompleteSignature", Reason::KeyRejected),
    ("RequestLimitExceeded", Reason::RateLimited),
    ("InvalidClientTokenId", Reason::KeyRejected),
    ("EC2ThrottledException", Reason::RateLimited),
    ("ModelTimeoutException", Reason::Timeout),
    ("ExpiredTokenException", Reason::KeyRejected),
    ("AccessDeniedException", Reason::PermissionDenied),
    ("BandwidthLimitExceeded", Reason::RateLimited),
    ("LimitExceededException", Reason::RateLimited),
    ("ModelNotReadyException", Reason::Overloaded),
    ("RequestTimeoutException", Reason::Timeout),
    ("InternalServerException", Reason::ServerError),
    ("TooManyRequestsException", Reason::RateLimited),
    ("RequestThrottledException", Reason::RateLimited),
    ("ModelStreamErrorException", Reason::ServerError),
    ("InvalidSignatureException", Reason::KeyRejected),
    ("ResourceNotFoundException", Reason::ModelNotFound),
    ("MissingAuthenticationToken", Reason::KeyRejected),
    ("ServiceUnavailableException", Reason::Overloaded),
    ("UnrecognizedClientException", Reason::KeyRejected),
    ("ServiceQuotaExceededException", Reason::QuotaExhausted),
    (
        "ProvisionedThroughputExceededException",
        Reason::RateLimited,
    ),
];

/// The reason an AWS-style error code names, whatever the status it came with (SageMaker
/// throttles with a 400; Bedrock's event stream reports `serviceUnavailableException` as a
/// 400). Codes that say nothing decisive (`ValidationException`) give `None`, and the text
/// decides. The throttling codes are the AWS SDKs' list (smithy-rs `AwsErrorRetryPolicy`).
pub(crate) fn aws_reason(code: &str) -> Option<Reason> {
    // Bit n is set when some name is n bytes long (every name is shorter than 64 bytes): a
    // code of any other length matches no name, and most codes are such.
    const LENGTHS: u64 = {
        let mut mask = 0u64;
        let mut i = 0;
        while i < AWS_CODES.len() {
            assert!(AWS_CODES[i].0.len() < 64);
            assert!(i == 0 || AWS_CODES[i - 1].0.len() <= AWS_CODES[i].0.len());
            mask |= 1 << AWS_CODES[i].0.len();
            i += 1;
        }
        mask
    };
    let code = code.trim();
    if code.len() >= 64 || LENGTHS & (1 << code.len()) == 0 {
        return None;
    }
    let first = AWS_CODES.partition_point(|(name, _)| name.len() < code.len());
    AWS_CODES[first..]
        .iter()
        .take_while(|(name, _)| name.len() == code.len())
        .find(|(name, _)| name.eq_ignore_ascii_case(code))
        .map(|(_, reason)| *reason)
}

/// A usage limit that says it lifts by itself ("try again later", "resets at 14:00 UTC", "a
/// periodic limit"), with no word of money nor of a day, week or month: a window to wait out
/// or to leave for another key, not a wall (on a 402, and with the words "usage limit" on a
/// 429: Fireworks' 429 "You have exceeded your usage limits. Please try again later").
/// `loose` also takes "quota" and "limit exceeded" for a usage limit.
fn usage_window(sig: Signals, loose: bool) -> bool {
    (sig.has(Family::UsageLimit) || (loose && sig.has(Family::UsageLimitLoose)))
        && sig.has(Family::TransientSignal)
        && !sig.has(Family::Money)
        && !sig.has(Family::Daily)
        && !sig.has(Family::LongWindow)
}

fn by_status(status: u16) -> Reason {
    match status {
        // An error inside a 200 with no status, type or wording to place it: the server took
        // the request and then failed (Ollama's streamed `{"error":"an unknown error was
        // encountered while running the model"}`, `{"error":"XML syntax error on line 3"}`).
        0 => Reason::ServerError,
        200..=299 => Reason::Success,
        // The request as sent cannot be served (RFC 9110 section 15.5): Length Required,
        // Range Not Satisfiable (Google's documented 416 `out_of_range`, ai.google.dev/
        // gemini-api/docs/api-errors), Expectation Failed.
        400 | 405 | 411 | 415 | 416 | 417 | 422 => Reason::MalformedRequest,
        // URI Too Long (RFC 9110 section 15.5.15) and Request Header Fields Too Large
        // (RFC 6585 section 5): the request is too big for this server.
        414 | 431 => Reason::PayloadTooLarge,
        401 => Reason::KeyRejected,
        402 => Reason::QuotaExhausted,
        403 => Reason::PermissionDenied,
        404 => Reason::ModelNotFound,
        // Gone: a retired model or deployment.
        410 => Reason::ModelNotFound,
        // A proxy between relent and the API wants credentials: the path failed, not the key.
        407 => Reason::ConnectionFailed,
        408 => Reason::Timeout,
        413 => Reason::PayloadTooLarge,
        // Unavailable For Legal Reasons: a region wall (Zed's "not available in your region").
        451 => Reason::PermissionDenied,
        424 => Reason::ServerError,
        // Client Closed Request, as Google's APIs send it (`CANCELLED`, "The operation was
        // cancelled", reason `backendError`): a caller that reads the answer did not close
        // the request, so the server gave up on it.
        499 => Reason::ServerError,
        429 => Reason::RateLimited,
        498 | 503 | 529 => Reason::Overloaded,
        500..=599 => Reason::ServerError,
        _ => Reason::Unknown,
    }
}

/// An aggregator passing on its upstream's answer: OpenRouter's "Provider returned error" with
/// the upstream's body in `metadata.raw`, or a gateway's "Error from provider (Name): …".
fn wrapped_upstream(provider: Provider, sig: Signals, fields: Option<&ErrorFields>) -> bool {
    // OpenRouter's envelope (`metadata.raw`) marks a wrapped upstream error whatever the
    // caller named the provider: OpenRouter is often reached as an OpenAI-compatible
    // endpoint (the simulator's reference checker found the envelope read as the key's own
    // rate limit there).
    let enveloped = fields.is_some_and(|f| f.upstream_raw.is_some());
    let openrouter = provider.spec().wraps_upstreams && sig.has(Family::OpenrouterWrapped);
    enveloped || openrouter || sig.has(Family::GatewayWrapped)
}

fn too_many_requests(
    provider: Provider,
    sig: Signals,
    quota: bool,
    fields: Option<&ErrorFields>,
    names_its_end: &dyn Fn() -> bool,
) -> Reason {
    if sig.has(Family::Overloaded) {
        return Reason::Overloaded;
    }
    if wrapped_upstream(provider, sig, fields) {
        return Reason::UpstreamRateLimited;
    }
    if quota && !usage_window(sig, false) {
        return Reason::QuotaExhausted;
    }
    // A daily allowance spent, with no word of when it lifts: tomorrow, not in a minute.
    if sig.has(Family::Daily) && !names_its_end() {
        return Reason::QuotaExhausted;
    }
    // A relay that rewrote its upstream's 429 (one-api, new-api); after the quota check, since
    // the same relays word their own spent balance the same way with `insufficient_quota`.
    if sig.has(Family::UpstreamSaturated) {
        return Reason::UpstreamRateLimited;
    }
    // "Request too large … Limit 30000, Requested 30601": the request alone exceeds the
    // window, so no wait can help; a smaller request or another target can.
    if sig.has(Family::Payload) {
        return Reason::PayloadTooLarge;
    }
    // Vertex's shared capacity: "Resource exhausted. Please try again later." names no quota
    // of the caller's, so no key of theirs is at fault.
    if sig.has(Family::ResourceExhaustedText) && !sig.has(Family::QuotaWord) {
        return Reason::Overloaded;
    }
    Reason::RateLimited
}

fn google(provider: Provider, sig: Signals) -> bool {
    provider.spec().google_quota_wording || sig.has(Family::GoogleExhausted)
}

/// Google words a spent daily quota as "Quota exceeded … per day" (it lifts tomorrow, not in a
/// minute; other providers' "tokens per day" rate limits name a wait of minutes instead), and a
/// key with no quota at all for a model as "limit: 0".
fn google_quota_wall(provider: Provider, sig: Signals) -> bool {
    google(provider, sig) && sig.has(Family::QuotaWord) && sig.has(Family::GoogleWall)
}

/// Gemini words a per-minute limit as "You exceeded your current quota"; it is a rate limit
/// unless the quota that ran out is a daily one, the key has none at all for the model
/// ("limit: 0", "doesn't have a free quota tier"), or billing is the problem.
fn gemini_short_window(provider: Provider, sig: Signals, fields: Option<&ErrorFields>) -> bool {
    let billing = sig.has(Family::Billing) && !sig.has(Family::CheckPlan);
    google(provider, sig)
        && !sig.has(Family::GoogleWall)
        && !billing
        && (fields.is_some_and(|f| f.retry_delay_ms.is_some())
            || sig.has(Family::PerMinute)
            || sig.has(Family::GoogleExhausted))
}

fn html_page(status: u16, sig: Signals) -> Reason {
    if sig.has(Family::WafChallenge)
        || status == 403
        || (status == 429 && sig.has(Family::WafBlock))
    {
        return Reason::BlockedByWaf;
    }
    match by_status(status) {
        // An HTML 401/404 comes from a proxy or a wrong URL, not from the API's key check.
        Reason::KeyRejected
        | Reason::ModelNotFound
        | Reason::MalformedRequest
        | Reason::PermissionDenied => Reason::Unknown,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    //! Neighbouring wordings of the corpus's real answers: each rule must hold for phrasings
    //! the corpus does not contain.

    use super::{aws_reason, AWS_CODES};
    use crate::classify::{
        classify, HintSource, HttpResponse, Observation, Provider, Reason, BODY_SCAN_LIMIT,
    };

    /// Every code of the table is found, in any case, wherever it stands in the table;
    /// a code one letter away from every name, or cut short, is not.
    #[test]
    fn every_aws_code_is_found_by_its_length() {
        for &(name, reason) in AWS_CODES {
            assert_eq!(aws_reason(name), Some(reason), "{name}");
            assert_eq!(
                aws_reason(&name.to_ascii_lowercase()),
                Some(reason),
                "{name}"
            );
            assert_eq!(aws_reason(&format!("  {name} ")), Some(reason), "{name}");
            let cut = &name[..name.len() - 1];
            if !AWS_CODES
                .iter()
                .any(|(other, _)| other.eq_ignore_ascii_case(cut))
            {
                assert_eq!(aws_reason(cut), None, "{cut}");
            }
            let changed = format!("{cut}#");
            assert_eq!(aws_reason(&changed), None, "{changed}");
        }
        assert_eq!(aws_reason(""), None);
        assert_eq!(aws_reason(&"x".repeat(200)), None);
    }

    fn reason_of(provider: Provider, status: u16, headers: &[(&str, &str)], body: &str) -> Reason {
        let seen = Observation::Http(HttpResponse {
            status,
            headers,
            body: body.as_bytes(),
        });
        classify(provider, &seen, None).reason
    }

    fn openai_shape(message: &str) -> String {
        serde_json::json!({"error": {"message": message, "type": "error"}}).to_string()
    }

    /// Each `(status, message, reason)`: the message in OpenAI's shape, from a generic
    /// provider with that status, classifies as that reason.
    fn assert_reasons(cases: &[(u16, &str, Reason)]) {
        for &(status, message, want) in cases {
            assert_bodies(&[(status, &openai_shape(message), want)]);
        }
    }

    /// Each `(status, body, reason)`: the body as it is, from a generic provider with that
    /// status, classifies as that reason.
    fn assert_bodies(cases: &[(u16, &str, Reason)]) {
        for &(status, body, want) in cases {
            assert_eq!(
                reason_of(Provider::Generic, status, &[], body),
                want,
                "{status} {body}"
            );
        }
    }

    #[test]
    fn a_server_error_never_turns_into_a_verdict_on_the_key() {
        for (status, message, want) in [
            (
                500,
                "Authentication failed: invalid API key",
                Reason::ServerError,
            ),
            (
                502,
                "upstream said: Incorrect API key provided",
                Reason::ServerError,
            ),
            (503, "invalid x-api-key", Reason::Overloaded),
            (500, "insufficient balance (1008)", Reason::ServerError),
            (504, "Your credit balance is too low", Reason::ServerError),
            (
                500,
                "permission_denied: not allowed to use this model",
                Reason::ServerError,
            ),
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Generic, status, &[], &body),
                want,
                "{status} {message}"
            );
        }
        // The same words on a 4xx still speak about the key.
        let body = openai_shape("Authentication failed: invalid API key");
        assert_eq!(
            reason_of(Provider::Generic, 401, &[], &body),
            Reason::KeyRejected
        );
        assert_eq!(
            reason_of(Provider::Generic, 400, &[], &body),
            Reason::KeyRejected
        );
    }

    #[test]
    fn documented_key_rejections_on_other_4xx_statuses_are_kept() {
        let gemini = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
        assert_eq!(
            reason_of(Provider::Gemini, 400, &[], gemini),
            Reason::KeyRejected
        );
        let xai = r#"{"code":"Client specified an invalid argument","error":"Incorrect API key provided: xa***. You can obtain an API key from https://console.x.ai."}"#;
        assert_eq!(reason_of(Provider::Xai, 400, &[], xai), Reason::KeyRejected);
        let headers = [("x-amzn-ErrorType", "UnrecognizedClientException")];
        let aws = r#"{"message":"The security token included in the request is invalid."}"#;
        assert_eq!(
            reason_of(Provider::Bedrock, 403, &headers, aws),
            Reason::KeyRejected
        );
        // … but not when a 5xx carries the same code.
        assert_eq!(
            reason_of(Provider::Bedrock, 500, &headers, aws),
            Reason::ServerError
        );
    }

    #[test]
    fn a_wrapped_upstream_auth_failure_is_the_upstreams_problem() {
        let raw = r#"{"error":{"message":"Provider returned error","code":401,"metadata":{"raw":"{\"error\":{\"message\":\"Invalid API key\"}}","provider_name":"SomeUpstream"}}}"#;
        assert_eq!(
            reason_of(Provider::Openrouter, 401, &[], raw),
            Reason::ServerError
        );
        assert_eq!(
            reason_of(Provider::Openrouter, 403, &[], raw),
            Reason::ServerError
        );
        let gateway = openai_shape("Error from provider (Acme): Incorrect API key provided");
        assert_eq!(
            reason_of(Provider::Generic, 401, &[], &gateway),
            Reason::ServerError
        );
        // OpenRouter's own key check is about the OpenRouter key.
        let own = r#"{"error":{"message":"No auth credentials found","code":401}}"#;
        assert_eq!(
            reason_of(Provider::Openrouter, 401, &[], own),
            Reason::KeyRejected
        );
        // An upstream 429 through a gateway is an upstream rate limit.
        let busy = openai_shape("Error from provider (Acme): rate limit exceeded");
        assert_eq!(
            reason_of(Provider::Generic, 429, &[], &busy),
            Reason::UpstreamRateLimited
        );
    }

    #[test]
    fn aws_error_codes_decide_whatever_the_status() {
        let body = r#"{"message":"whatever the text says"}"#;
        for (code, status, want) in [
            ("ThrottlingException", 400, Reason::RateLimited),
            ("Throttling", 503, Reason::RateLimited),
            ("TooManyRequestsException", 500, Reason::RateLimited),
            (
                "ProvisionedThroughputExceededException",
                400,
                Reason::RateLimited,
            ),
            ("serviceUnavailableException", 400, Reason::Overloaded),
            ("ModelNotReadyException", 429, Reason::Overloaded),
            ("ModelTimeoutException", 424, Reason::Timeout),
            ("ModelStreamErrorException", 200, Reason::ServerError),
            ("ServiceQuotaExceededException", 400, Reason::QuotaExhausted),
            ("AccessDeniedException", 400, Reason::PermissionDenied),
            ("ResourceNotFoundException", 400, Reason::ModelNotFound),
        ] {
            let header = format!("{code}:http://internal.amazon.com/coral/com.amazon.bedrock/");
            let headers = [("x-amzn-errortype", header.as_str())];
            assert_eq!(
                reason_of(Provider::Bedrock, status, &headers, body),
                want,
                "{code} with {status}"
            );
        }
        // The code can sit in the body's __type, and an event stream names it ":exception-type".
        let typed = r#"{"__type":"com.amazonaws.sagemaker#ThrottlingException","message":null}"#;
        assert_eq!(
            reason_of(Provider::Generic, 400, &[], typed),
            Reason::RateLimited
        );
        let stream = [(":exception-type", "throttlingException")];
        assert_eq!(
            reason_of(Provider::Bedrock, 400, &stream, body),
            Reason::RateLimited
        );
        // ValidationException decides nothing: the text does.
        let headers = [("x-amzn-errortype", "ValidationException")];
        let long = r#"{"message":"Input is too long for requested model."}"#;
        assert_eq!(
            reason_of(Provider::Bedrock, 400, &headers, long),
            Reason::ContextOverflow
        );
        let bad = r#"{"message":"1 validation error detected: Value at 'temperature' failed"}"#;
        assert_eq!(
            reason_of(Provider::Bedrock, 400, &headers, bad),
            Reason::MalformedRequest
        );
    }

    #[test]
    fn x_amz_retry_after_is_a_wait_in_milliseconds() {
        let headers = [
            ("x-amzn-errortype", "ThrottlingException"),
            ("x-amz-retry-after", "1500"),
        ];
        let seen = Observation::Http(HttpResponse {
            status: 400,
            headers: &headers,
            body: br#"{"message":"Rate exceeded"}"#,
        });
        let c = classify(Provider::Bedrock, &seen, None);
        assert_eq!(c.reason, Reason::RateLimited);
        let wait = c.wait.expect("a wait hint");
        assert_eq!(
            (wait.after_ms, wait.source),
            (1500, HintSource::RetryAfterMs)
        );
    }

    #[test]
    fn context_overflow_in_local_servers_wordings() {
        for (status, message) in [
            (
                400,
                "the request exceeds the available context size, try increasing it",
            ),
            (
                500,
                "The request exceeds the available context size (8192 tokens)",
            ),
            (500, "context size has been exceeded by 312 tokens"),
            (
                400,
                "Trying to keep the first 9000 tokens when context the overflows",
            ),
            (
                400,
                "Input length (9000 tokens) exceeds the maximum allowed length (8192 tokens)",
            ),
            (
                422,
                "Input validation error: `inputs` must have less than 4096 tokens. Given: 5000",
            ),
            (
                400,
                "prompt too long: 5000 tokens exceeds max context window of 4096 tokens",
            ),
            (400, "n_keep (5000) >= n_ctx (4096)"),
            (400, "输入内容超长，请缩短后重试"),
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Generic, status, &[], &body),
                Reason::ContextOverflow,
                "{status} {message}"
            );
        }
        // A weak wording on a 5xx is not enough to blame the request: it must say something
        // is over a limit.
        let weak = openai_shape("worker crashed while computing the context window");
        assert_eq!(
            reason_of(Provider::Generic, 500, &[], &weak),
            Reason::ServerError
        );
        // A complaint about max_tokens is a malformed request even when it names the window.
        for message in [
            "max_tokens must be at most 8192, which is below the context window of this model",
            "Invalid max_tokens value, the valid range of max_tokens is [1, 4096]",
            "max_tokens: 90000 > 64000, which is the maximum allowed number of output tokens for this model (context length 200000)",
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Generic, 400, &[], &body),
                Reason::MalformedRequest,
                "{message}"
            );
        }
    }

    #[test]
    fn capacity_and_memory_guards_are_overloads_not_malformed_requests() {
        for (status, message) in [
            (
                500,
                "model requires more system memory (12 GiB) than is available (8 GiB)",
            ),
            (503, "server busy, please try again later"),
            (500, "no slots available for this request"),
            (400, "CUDA out of memory while allocating the KV cache"),
            (429, "The system is experiencing high demand right now"),
            (429, "No more data centers to forward the request to"),
            (503, "Model org/name is currently loading"),
            (429, "该模型当前访问量过大"),
            (429, "服务器繁忙，请稍后再试"),
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Generic, status, &[], &body),
                Reason::Overloaded,
                "{status} {message}"
            );
        }
    }

    #[test]
    fn short_usage_windows_are_rate_limits_and_walls_are_quota() {
        for (status, message, want) in [
            (
                429,
                "usage limit reached for the 5-hour window",
                Reason::RateLimited,
            ),
            (
                402,
                "Free quota used (100 requests / 5h). Resets soon.",
                Reason::RateLimited,
            ),
            (429, "已达到 5 小时的使用上限", Reason::RateLimited),
            (
                429,
                "monthly usage limit reached; resets on the 1st",
                Reason::QuotaExhausted,
            ),
            (
                402,
                "Your account has insufficient balance",
                Reason::QuotaExhausted,
            ),
            (
                403,
                "Your team has no credits left: it doesn't have any credits yet",
                Reason::QuotaExhausted,
            ),
            (400, "余额不足，请充值", Reason::QuotaExhausted),
            (
                400,
                "Access denied, please make sure your account is in good standing.",
                Reason::QuotaExhausted,
            ),
            (
                429,
                "Credit limit exceeded for this organisation",
                Reason::QuotaExhausted,
            ),
            (403, "paid_account_required", Reason::QuotaExhausted),
            (
                404,
                "a paid account required for this model",
                Reason::QuotaExhausted,
            ),
            (
                403,
                "Purchase credits to unlock all models",
                Reason::QuotaExhausted,
            ),
            (
                402,
                "You have no credits remaining on your account",
                Reason::QuotaExhausted,
            ),
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Generic, status, &[], &body),
                want,
                "{status} {message}"
            );
        }
    }

    #[test]
    fn a_request_larger_than_the_window_is_a_payload_problem() {
        let body = openai_shape(
            "Request too large for model on tokens per minute (TPM): Limit 1000, Requested 2000",
        );
        assert_eq!(
            reason_of(Provider::Openai, 429, &[], &body),
            Reason::PayloadTooLarge
        );
        assert_eq!(
            reason_of(Provider::Groq, 413, &[], &body),
            Reason::PayloadTooLarge
        );
        // An ordinary TPM rate limit names a wait and stays a rate limit.
        let tpm = openai_shape(
            "Rate limit reached on tokens per minute (TPM): Limit 1000, Used 990, Requested 20. Please try again in 2s.",
        );
        assert_eq!(
            reason_of(Provider::Openai, 429, &[], &tpm),
            Reason::RateLimited
        );
    }

    #[test]
    fn google_capacity_is_an_overload_and_google_quota_is_not() {
        let capacity = r#"{"error":{"code":429,"message":"Resource exhausted, please try again later.","status":"RESOURCE_EXHAUSTED"}}"#;
        assert_eq!(
            reason_of(Provider::Vertex, 429, &[], capacity),
            Reason::Overloaded
        );
        let quota = r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;
        assert_eq!(
            reason_of(Provider::Gemini, 429, &[], quota),
            Reason::RateLimited
        );
        let daily = r#"{"error":{"code":429,"message":"Quota exceeded for quota metric 'Requests' and limit 'Requests per day per project'","status":"RESOURCE_EXHAUSTED"}}"#;
        assert_eq!(
            reason_of(Provider::Vertex, 429, &[], daily),
            Reason::QuotaExhausted
        );
        let zero = r#"{"error":{"code":429,"message":"Quota exceeded for metric: x, limit: 0, model: y. Please retry in 3s.","status":"RESOURCE_EXHAUSTED"}}"#;
        assert_eq!(
            reason_of(Provider::Gemini, 429, &[], zero),
            Reason::QuotaExhausted
        );
    }

    #[test]
    fn redirects_and_proxy_authentication_never_touch_the_key() {
        let body = openai_shape("Invalid API key");
        assert_eq!(
            reason_of(Provider::Openai, 301, &[], &body),
            Reason::Unknown
        );
        assert_eq!(reason_of(Provider::Openai, 308, &[], ""), Reason::Unknown);
        assert_eq!(
            reason_of(Provider::Openai, 407, &[], &body),
            Reason::ConnectionFailed
        );
        let html = [("content-type", "text/html")];
        assert_eq!(
            reason_of(
                Provider::Anthropic,
                407,
                &html,
                "<html>Proxy Authentication Required</html>"
            ),
            Reason::ConnectionFailed
        );
    }

    #[test]
    fn an_error_code_after_the_scan_bound_survives() {
        let body = format!(
            r#"{{"error":{{"message":"{}","type":"invalid_request_error","code":"rate_limit_exceeded"}}}}"#,
            "y".repeat(BODY_SCAN_LIMIT + 100)
        );
        let seen = Observation::Http(HttpResponse {
            status: 400,
            headers: &[],
            body: body.as_bytes(),
        });
        let c = classify(Provider::Openai, &seen, None);
        assert_eq!(c.reason, Reason::RateLimited);
        assert_eq!(c.code.as_deref(), Some("rate_limit_exceeded"));
    }

    #[test]
    fn in_band_errors_of_baidu_and_cloudflare_are_read() {
        let baidu = r#"{"error_code":336103,"error_msg":"the max input characters is 20000"}"#;
        let seen = Observation::Http(HttpResponse {
            status: 200,
            headers: &[],
            body: baidu.as_bytes(),
        });
        let c = classify(Provider::Generic, &seen, None);
        assert_ne!(
            c.reason,
            Reason::Success,
            "an error_msg inside a 200 is an error"
        );
        assert_eq!(c.message, "the max input characters is 20000");
        let cloudflare = r#"{"success":false,"errors":[{"code":3040,"message":"Capacity temporarily exceeded, please try again."}],"messages":[]}"#;
        assert_eq!(
            reason_of(Provider::Generic, 429, &[], cloudflare),
            Reason::Overloaded
        );
    }

    #[test]
    fn a_disabled_organization_or_an_unaccepted_identity_rejects_the_key() {
        for (status, message) in [
            (400, "This organization has been disabled."),
            (
                400,
                "Your organization has been disabled for a policy violation",
            ),
            (400, "Organization has been restricted. Contact support."),
            (
                403,
                "Method doesn't allow unregistered callers (callers without established identity).",
            ),
            (200, "Access token invalid or no longer valid"),
            (200, "Access token expired"),
            (401, "invalid access token or token expired"),
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Generic, status, &[], &body),
                Reason::KeyRejected,
                "{status} {message}"
            );
        }
        let groq = r#"{"error":{"message":"Access suspended.","type":"invalid_request_error","code":"organization_restricted"}}"#;
        assert_eq!(
            reason_of(Provider::Groq, 400, &[], groq),
            Reason::KeyRejected
        );
        // Still the server's problem on a 5xx.
        let body = openai_shape("This organization has been disabled.");
        assert_eq!(
            reason_of(Provider::Generic, 500, &[], &body),
            Reason::ServerError
        );
    }

    #[test]
    fn a_spent_gateway_budget_is_quota_on_any_4xx() {
        for (status, message) in [
            (
                400,
                "Budget has been exceeded! Current cost: 12.5, Max budget: 10.0",
            ),
            (
                429,
                "LiteLLM Team: research, exceeded budget for model=gpt-4o",
            ),
            (
                400,
                "ExceededBudget: End User=alice over budget. Spend=3.2, Budget=3.0",
            ),
            (403, "Key budget exceeded for this billing period"),
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Generic, status, &[], &body),
                Reason::QuotaExhausted,
                "{status} {message}"
            );
        }
        // A thinking budget is a parameter, not money.
        let thinking = openai_shape("`max_tokens` must be greater than `thinking.budget_tokens`");
        assert_eq!(
            reason_of(Provider::Anthropic, 400, &[], &thinking),
            Reason::MalformedRequest
        );
    }

    #[test]
    fn token_limits_of_moonshot_cohere_and_bedrock_are_context_overflows() {
        for (status, message) in [
            (
                400,
                "Invalid request: Your request exceeded model token limit: 131072 (requested: 140000)",
            ),
            (400, "model max length exceeded, max length:32768"),
            (
                400,
                "too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 4292.",
            ),
            (400, "too many tokens: size limit exceeded by 11326 tokens."),
            (
                400,
                "Malformed input request: #/texts/0: expected maxLength: 2048, actual: 2500, please reformat your input and try again.",
            ),
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Generic, status, &[], &body),
                Reason::ContextOverflow,
                "{status} {message}"
            );
        }
        // Complaints about the output budget stay malformed requests, even with "too many tokens"
        // or the context window in them.
        for message in [
            "too many tokens: max tokens must be less than or equal to 4096, the maximum output for this model - received 8192.",
            "max_completion_tokens must be less than or equal to 8192, the maximum value for max_completion_tokens is less than the context_window for this model",
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Generic, 400, &[], &body),
                Reason::MalformedRequest,
                "{message}"
            );
        }
        // Bedrock's throttling wording stays a rate limit.
        let throttled = openai_shape("Too many tokens, please wait before trying again.");
        assert_eq!(
            reason_of(Provider::Generic, 400, &[], &throttled),
            Reason::RateLimited
        );
    }

    #[test]
    fn retired_unknown_and_uninvocable_models_are_model_not_found() {
        for message in [
            "The model `mixtral-8x7b-32768` has been decommissioned and is no longer supported.",
            "The provided model identifier is invalid.",
            "Invocation of model ID anthropic.claude-3-7-sonnet-20250219-v1:0 with on-demand throughput isn't supported.",
            "The provided model doesn't support on-demand throughput.",
            "Model not exist.",
            "[1211][模型不存在，请检查模型代码。]",
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Generic, 400, &[], &body),
                Reason::ModelNotFound,
                "{message}"
            );
        }
        let code_only = r#"{"error":{"message":"gone","type":"invalid_request_error","code":"model_decommissioned"}}"#;
        assert_eq!(
            reason_of(Provider::Groq, 400, &[], code_only),
            Reason::ModelNotFound
        );
    }

    #[test]
    fn region_and_verification_walls_are_permission_denied() {
        for (status, message) in [
            (400, "User location is not supported for the API use."),
            (403, "Your location is not supported by this model"),
            (
                400,
                "Your organization must be verified to stream this model. Please go to settings.",
            ),
            (
                400,
                "Your organization must be verified to generate reasoning summaries.",
            ),
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Generic, status, &[], &body),
                Reason::PermissionDenied,
                "{status} {message}"
            );
        }
    }

    #[test]
    fn a_per_request_token_cap_is_a_payload_problem() {
        for message in [
            "Requested 400000 tokens, max 300000 tokens per request",
            "Batch exceeds max_tokens_per_request",
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Openai, 400, &[], &body),
                Reason::PayloadTooLarge,
                "{message}"
            );
        }
    }

    #[test]
    fn a_relay_rewritten_upstream_429_is_the_upstreams_rate_limit() {
        let saturated = r#"{"error":{"message":"当前分组上游负载已饱和，请稍后再试 (request id: 2025)","type":"new_api_error","param":"","code":null}}"#;
        assert_eq!(
            reason_of(Provider::Generic, 429, &[], saturated),
            Reason::UpstreamRateLimited
        );
        let upstream_error = r#"{"error":{"message":"上游负载已饱和","type":"upstream_error"}}"#;
        assert_eq!(
            reason_of(Provider::Generic, 429, &[], upstream_error),
            Reason::UpstreamRateLimited
        );
        // The same words over the relay's own spent balance are quota.
        let spent = r#"{"error":{"message":"当前分组上游负载已饱和，请稍后再试","type":"insufficient_quota","code":"insufficient_user_quota"}}"#;
        assert_eq!(
            reason_of(Provider::Generic, 429, &[], spent),
            Reason::QuotaExhausted
        );
    }

    #[test]
    fn a_prompt_longer_than_the_model_length_overflows_the_context_on_any_status() {
        // vLLM's wording; servers in front of vLLM (Xinference) pass it on with a 500.
        for (status, message) in [
            (
                400,
                "The decoder prompt (length 9000) is longer than the maximum model length of 8192.",
            ),
            (
                500,
                "[address=0.0.0.0:1234, pid=7] The decoder prompt (length 40000) is longer than the maximum model length of 32768.",
            ),
            (
                400,
                "Prompt length of 5000 is longer than the maximum model length of 4096.",
            ),
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Generic, status, &[], &body),
                Reason::ContextOverflow,
                "{status} {message}"
            );
        }
        // A complaint about the output budget is still a malformed request.
        let body = openai_shape("max_tokens must be at least 1, got -53.");
        assert_eq!(
            reason_of(Provider::Generic, 400, &[], &body),
            Reason::MalformedRequest
        );
    }

    #[test]
    fn a_server_without_capacity_for_the_model_is_overloaded() {
        for body in [
            r#"{"error":{"code":429,"message":"No capacity available for model gemini-2.5-pro on the server","status":"RESOURCE_EXHAUSTED"}}"#,
            r#"{"error":{"code":429,"message":"Server at capacity","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"MODEL_CAPACITY_EXHAUSTED"}]}}"#,
            r#"{"error":{"code":503,"message":"No capacity available right now"}}"#,
        ] {
            assert_eq!(
                reason_of(Provider::Gemini, 429, &[], body),
                Reason::Overloaded,
                "{body}"
            );
        }
        // The caller's own per-minute quota stays a rate limit.
        let per_minute = r#"{"error":{"code":429,"message":"You exceeded your current quota. Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"20s"}]}}"#;
        assert_eq!(
            reason_of(Provider::Gemini, 429, &[], per_minute),
            Reason::RateLimited
        );
    }

    #[test]
    fn googles_quota_exhausted_reason_is_a_wall_even_with_a_retry_delay() {
        for body in [
            r#"{"error":{"code":429,"message":"You have exhausted your capacity on this model. Your quota will reset after 20h1m2s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA_EXHAUSTED","domain":"cloudcode-pa.googleapis.com"},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"72062s"}]}}"#,
            r#"{"error":{"code":429,"message":"Individual quota reached. Resets in 3h.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA_EXHAUSTED"}]}}"#,
        ] {
            assert_eq!(
                reason_of(Provider::Gemini, 429, &[], body),
                Reason::QuotaExhausted,
                "{body}"
            );
        }
        // Cloud Code's short limit says RATE_LIMIT_EXCEEDED and stays a rate limit.
        let short = r#"{"error":{"code":429,"message":"You have exhausted your capacity on this model. Your quota will reset after 5s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED"},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"5s"}]}}"#;
        assert_eq!(
            reason_of(Provider::Gemini, 429, &[], short),
            Reason::RateLimited
        );
    }

    #[test]
    fn a_spent_free_allocation_or_an_overdue_account_is_quota() {
        for (status, message) in [
            (429, "Free allocated quota exceeded."),
            (429, "free allocated quota exceeded for this model today"),
            (
                403,
                "The request failed because your account has an overdue balance.",
            ),
            (400, "AccountOverdueError"),
        ] {
            let body = openai_shape(message);
            assert_eq!(
                reason_of(Provider::Generic, status, &[], &body),
                Reason::QuotaExhausted,
                "{status} {message}"
            );
        }
        // A plain rate limit stays one.
        let body = openai_shape("Requests rate limit exceeded, please try again later.");
        assert_eq!(
            reason_of(Provider::Generic, 429, &[], &body),
            Reason::RateLimited
        );
    }

    #[test]
    fn permission_wording_on_a_404_or_451_wins_when_the_model_exists() {
        for (status, body) in [
            (
                404,
                openai_shape("Your organization must be verified to use the model `o4`. Please go to settings."),
            ),
            // The same wall with a code that names the model's availability, not its absence.
            (
                404,
                r#"{"error":{"message":"Your organization must be verified to use the model `gpt-image-1`.","type":"invalid_request_error","code":"model_not_available"}}"#.to_string(),
            ),
            (
                404,
                r#"{"error":{"code":"ModelNotOpen","message":"Your account 42 has not activated the model doubao-seed-1-6. Please activate the model service in the Ark Console."}}"#.to_string(),
            ),
            (403, openai_shape("This model is not available in your country.")),
            (451, "Access to these models is not available in your region (XY)".to_string()),
            (400, openai_shape("This model is not available in your region.")),
        ] {
            assert_eq!(
                reason_of(Provider::Generic, status, &[], &body),
                Reason::PermissionDenied,
                "{status} {body}"
            );
        }
        // A model that does not exist stays model_not_found, even with access words beside it.
        for body in [
            openai_shape("The model `gpt-9` does not exist or you do not have access to it."),
            openai_shape("Publisher Model `projects/p/locations/l/publishers/google/models/gemini-9` was not found or your project does not have access to it."),
            r#"{"error":{"message":"model not found","type":"invalid_request_error","code":"model_not_found"}}"#.to_string(),
        ] {
            assert_eq!(
                reason_of(Provider::Generic, 404, &[], &body),
                Reason::ModelNotFound,
                "{body}"
            );
        }
        // A plain 404 is still a missing model.
        assert_eq!(
            reason_of(Provider::Generic, 404, &[], &openai_shape("Not Found")),
            Reason::ModelNotFound
        );
    }

    /// Fourth collection round: each new rule on wordings next to the collected ones.
    #[test]
    fn fourth_round_rules_hold_for_neighbouring_wordings() {
        let cases: &[(u16, &str, Reason)] = &[
            // A relay without a route for the model, on any status it picks.
            (503, "No available channel for model gpt-4o under group vip", Reason::ModelNotFound),
            (500, "分组 svip 下模型 claude-3 无可用渠道", Reason::ModelNotFound),
            // A daily allowance with no wait is a wall; a daily limit naming its wait is not.
            (429, "Daily limit reached for free requests. Upgrade to continue.", Reason::QuotaExhausted),
            (429, "You have used all 50 requests per day of the free tier", Reason::QuotaExhausted),
            (
                429,
                "Rate limit reached on requests per day (RPD): Limit 200, Used 200. Please try again in 7m12s.",
                Reason::RateLimited,
            ),
            (429, "Too many requests per minute", Reason::RateLimited),
            // Spend caps, on the statuses they come with.
            (400, "You have hit your billing hard limit for this month", Reason::QuotaExhausted),
            (403, "insufficient credits balance on the account", Reason::QuotaExhausted),
            // A session window lifts within hours.
            (429, "Session limit reached: upgrade or wait for the next session", Reason::RateLimited),
            // A switched-off account rejects every request made with its key.
            (403, "Your account has been suspended for policy violations", Reason::KeyRejected),
            (401, "access_terminated: contact support", Reason::KeyRejected),
            (403, "Authorization failed: check the key", Reason::KeyRejected),
            // Requests the server cannot take as written, even from a 500.
            (500, "Unsupported param: response_format", Reason::MalformedRequest),
            (500, "\"tool_choice\" param requires --jinja flag", Reason::MalformedRequest),
            (500, "input is too large to process. increase the physical batch size", Reason::PayloadTooLarge),
            // Capacity: a full cache or no memory for the model is an overload on any status.
            (424, "Out of available cache blocks: asked 12, only 0 free blocks", Reason::Overloaded),
            (500, "failed to allocate compute buffer for the model", Reason::Overloaded),
            // Content walls and entitlement walls.
            (400, "This request may violate our usage policy.", Reason::ContentFilter),
            (400, "OutputTextRiskDetection: the output includes sensitive content", Reason::ContentFilter),
            (400, "This setting is only available to allowlisted projects", Reason::PermissionDenied),
        ];
        assert_reasons(cases);
        // A daily limit whose end the server names, in a header, is a rate limit.
        let body = openai_shape("Daily limit reached for free requests.");
        assert_eq!(
            reason_of(Provider::Generic, 429, &[("Retry-After", "30")], &body),
            Reason::RateLimited
        );
        // A server's own 5xx words about quota or keys still do not touch the key.
        let body = openai_shape("Your account has been suspended");
        assert_eq!(
            reason_of(Provider::Generic, 502, &[], &body),
            Reason::ServerError
        );
    }

    /// Fifth collection round: each new rule on wordings next to the collected ones.
    #[test]
    fn fifth_round_rules_hold_for_neighbouring_wordings() {
        let cases: &[(u16, &str, Reason)] = &[
            // Credentials dead for good, whatever type the body names.
            (403, "permission_error: the OAuth token has expired, log in again", Reason::KeyRejected),
            (403, "This API token has been revoked by an administrator", Reason::KeyRejected),
            (403, "The user is no longer a member of the organization", Reason::KeyRejected),
            (403, "Suspended for a violation of terms of use", Reason::KeyRejected),
            // Walls in front of a working key.
            (400, "This key is only authorized for internal tools", Reason::PermissionDenied),
            (400, "Batch mode is not yet available for your plan", Reason::PermissionDenied),
            (401, "Insufficient permissions: missing scopes model.request", Reason::PermissionDenied),
            (400, "User is not authorized to invoke model X", Reason::PermissionDenied),
            (400, "operation not allowed for this account", Reason::PermissionDenied),
            // Attachments over a cap are a payload problem.
            (400, "image is too large: 21 MB, the maximum is 20 MB", Reason::PayloadTooLarge),
            (400, "The PDF has 700 pages; at most 600 PDF pages are accepted", Reason::PayloadTooLarge),
            (400, "file too large for this endpoint", Reason::PayloadTooLarge),
            // Context in servers' own words.
            (400, "prompt length 9000 exceeds max_seq_len 8192", Reason::ContextOverflow),
            (424, "inputs must have less than 4096 tokens. Given: 5000", Reason::ContextOverflow),
            (500, "context shift is disabled", Reason::ContextOverflow),
            // A model the server has not loaded, also on a 409.
            (409, "model not loaded: load it first", Reason::ModelNotFound),
            (400, "The endpoint for this model is not running", Reason::ModelNotFound),
            // A platform's invocation timeout; a gateway that got nothing from its provider.
            (424, "Model invocation timed out after 60 s", Reason::Timeout),
            (400, "Failed to get response from provider openai", Reason::ServerError),
            // Content walls in providers' codes and words.
            (400, "Content Exists Risk", Reason::ContentFilter),
            // A billing wall asking for a new payment method; a rate limit that only suggests
            // adding one, and names its wait, stays a rate limit.
            (403, "Please update your payment method to keep using the API", Reason::QuotaExhausted),
            (
                429,
                "Rate limit reached on requests per minute. Please try again in 20s. Add a payment method to raise it.",
                Reason::RateLimited,
            ),
        ];
        assert_reasons(cases);
        // A WAF's block page is a block on any status.
        let page = r#"<html><head><title>405</title></head><body><div id="block_message"></div></body></html>"#;
        assert_eq!(
            reason_of(Provider::Generic, 405, &[], page),
            Reason::BlockedByWaf
        );
    }

    /// Sixth collection round: each new rule on wordings next to the collected ones.
    #[test]
    fn sixth_round_rules_hold_for_neighbouring_wordings() {
        let cases: &[(u16, &str, Reason)] = &[
            // Relays' balances, plan walls and one-word usage-limit types are quota.
            (
                403,
                "insufficient user quota for this request",
                Reason::QuotaExhausted,
            ),
            (
                403,
                "account balance is insufficient, please top up",
                Reason::QuotaExhausted,
            ),
            (
                403,
                "You must subscribe to Pro to use this model",
                Reason::QuotaExhausted,
            ),
            (429, "MonthlyUsageLimitExceeded", Reason::QuotaExhausted),
            // A daily cap by its abbreviation, with no end named, is a wall; with a wait, a
            // rate limit.
            (
                429,
                "organization RPD rate limit reached, limit: 1000",
                Reason::QuotaExhausted,
            ),
            (
                429,
                "Rate limit reached on tokens per day (TPD): Limit 100. Please try again in 3m.",
                Reason::RateLimited,
            ),
            // The type alone does not say a key is dead: Kimi sends its weekly limit with it.
            (
                403,
                "access_terminated_error: weekly usage limit reached",
                Reason::QuotaExhausted,
            ),
            // Context in Copilot's words.
            (
                400,
                "prompt token count of 200001 exceeds the limit of 200000",
                Reason::ContextOverflow,
            ),
            // Guardrails of a gateway block content; a routing rule named after them does not.
            (
                400,
                "Request blocked: guardrail checks failed",
                Reason::ContentFilter,
            ),
            (
                404,
                "No endpoints found matching your guardrail restrictions",
                Reason::ModelNotFound,
            ),
            // Regions and provider settings are walls in front of the model.
            (
                403,
                "Not allowed from an unsupported country",
                Reason::PermissionDenied,
            ),
            (
                404,
                "No allowed providers are available for this model",
                Reason::PermissionDenied,
            ),
            // A model the account's plan does not serve; a request sent to the wrong place.
            (
                400,
                "This model is not supported with your account",
                Reason::ModelNotFound,
            ),
            (
                404,
                "Invalid URL (GET /v1/v1/models)",
                Reason::MalformedRequest,
            ),
            (
                404,
                "This model is only supported in v1/completions",
                Reason::MalformedRequest,
            ),
        ];
        assert_reasons(cases);
        // A CDN firewall's verdict in a header decides, whatever the body says; another
        // value of the header, or a success, does not.
        let body = openai_shape("Forbidden");
        for (name, value, want) in [
            ("x-vercel-mitigated", "deny", Reason::BlockedByWaf),
            ("X-Vercel-Mitigated", " challenge ", Reason::BlockedByWaf),
            ("cf-mitigated", "challenge", Reason::BlockedByWaf),
            ("cf-mitigated", "none", Reason::PermissionDenied),
        ] {
            assert_eq!(
                reason_of(Provider::Generic, 403, &[(name, value)], &body),
                want,
                "{name}: {value}"
            );
        }
        assert_eq!(
            reason_of(
                Provider::Generic,
                200,
                &[("cf-mitigated", "challenge")],
                "{}"
            ),
            Reason::Success
        );
    }

    /// Seventh collection round: each new rule on wordings next to the collected ones.
    #[test]
    fn seventh_round_rules_hold_for_neighbouring_wordings() {
        let cases: &[(u16, &str, Reason)] = &[
            // A suspended consumer (a key or its project) rejects the key.
            (
                403,
                "Consumer 'project:42' has been suspended.",
                Reason::KeyRejected,
            ),
            (403, "CONSUMER_SUSPENDED", Reason::KeyRejected),
            // A per-minute limit is a rate limit even beside quota or credit words.
            (
                429,
                "credit_limit: you may send 10 requests per minute",
                Reason::RateLimited,
            ),
            (
                429,
                "Quota of 100 tokens per minute reached",
                Reason::RateLimited,
            ),
            // Traffic and busy models are overloads.
            (
                429,
                "High traffic on this model, please retry",
                Reason::Overloaded,
            ),
            (503, "The model is busy right now", Reason::Overloaded),
            // A missing version or model on a 422.
            (
                422,
                "The requested model does not exist",
                Reason::ModelNotFound,
            ),
            // Truncation that cannot fit the context.
            (
                400,
                "Cannot truncate to 32000 tokens, required 50000",
                Reason::ContextOverflow,
            ),
        ];
        assert_reasons(cases);
    }

    /// Eighth collection round (servers' and gateways' own sources, errors inside a 200):
    /// each new rule on wordings next to the collected ones.
    #[test]
    fn eighth_round_rules_hold_for_neighbouring_wordings() {
        let cases: &[(u16, &str, Reason)] = &[
            (
                401,
                "Authentication Error - Expired Key. Expired at 2025-01-01",
                Reason::KeyRejected,
            ),
            (403, "该用户已被封禁", Reason::KeyRejected),
            (
                401,
                "ExceededTokenBudget: spend 3.1, max budget 3.0",
                Reason::QuotaExhausted,
            ),
            (
                403,
                "No quota left for this consumer",
                Reason::QuotaExhausted,
            ),
            (401, "该令牌额度已用尽", Reason::QuotaExhausted),
            (
                400,
                "Invalid model name passed in model=gpt-9",
                Reason::ModelNotFound,
            ),
            (
                400,
                "Invalid model name passed in model=None",
                Reason::MalformedRequest,
            ),
            (
                400,
                "Unsupported model foo, see the models list",
                Reason::ModelNotFound,
            ),
            (
                400,
                "the adapter could not be loaded",
                Reason::ModelNotFound,
            ),
            (400, "model 'x' is not loaded", Reason::ModelNotFound),
            (
                403,
                "Model gpt-4o is not allowed for this key",
                Reason::PermissionDenied,
            ),
            (
                400,
                "the batch should not exceed max_num_tokens (8192)",
                Reason::PayloadTooLarge,
            ),
            // Nothing loaded, or no route to the model, on any status.
            (503, "No model loaded.", Reason::ModelNotFound),
            // Gone is a retired model.
            (410, "Gone", Reason::ModelNotFound),
        ];
        assert_reasons(cases);
        // Errors inside a 200: the type stands for its status; words of a server fault make
        // a server error; a JSON object that ends an event stream is read.
        for (body, want) in [
            (
                "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"oops\"}}\n\n",
                Reason::ServerError,
            ),
            (
                "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"x\"}}\n\n",
                Reason::Overloaded,
            ),
            (
                "data: {\"error\":{\"type\":\"invalid_request_error\",\"message\":\"bad\"}}\n\n",
                Reason::MalformedRequest,
            ),
            (
                "{\"error\":\"an internal error happened in the runner\"}\n",
                Reason::ServerError,
            ),
            (
                "data: {\"choices\":[]}\n\n{\n  \"error\": {\n    \"code\": 503,\n    \"message\": \"busy\"\n  }\n}\n",
                Reason::Overloaded,
            ),
            ("data: {\"choices\":[]}\n\n{\"note\":\"no error here\"}\n", Reason::Success),
        ] {
            assert_eq!(reason_of(Provider::Generic, 200, &[], body), want, "{body}");
        }
        // Gemini's blocked prompt is a 200 without candidates; only Google wording reads it.
        let blocked = r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#;
        assert_eq!(
            reason_of(Provider::Gemini, 200, &[], blocked),
            Reason::ContentFilter
        );
        assert_eq!(
            reason_of(Provider::Openai, 200, &[], blocked),
            Reason::Success
        );
    }

    #[test]
    fn thirteenth_round_rules_hold_for_neighbouring_wordings() {
        let cases: &[(u16, &str, Reason)] = &[
            // A gateway's guardrail refused the prompt, whatever status it gave.
            (
                500,
                "Guardrail intervened: the request contains blocked topics",
                Reason::ContentFilter,
            ),
            (
                502,
                "Bedrock guardrail failed: PII detected",
                Reason::ContentFilter,
            ),
            // Providers' own content checks.
            (
                403,
                "Content violates usage guidelines. Failed check: SAFETY_CHECK_TYPE_CSAM",
                Reason::ContentFilter,
            ),
            (
                400,
                "The image is blocked, as it may violate our policies.",
                Reason::ContentFilter,
            ),
            (
                400,
                "The prompt contains sensitive words; rephrase it.",
                Reason::ContentFilter,
            ),
            // A model served only on another endpoint.
            (
                404,
                "this model has no chat template, please use /completions instead",
                Reason::MalformedRequest,
            ),
        ];
        assert_reasons(cases);
        // Fourteenth round: an unpaid account behind a 403.
        assert_reasons(&[
            (
                403,
                "Access denied: overdue account",
                Reason::QuotaExhausted,
            ),
            (
                403,
                "Your account is overdue; pay to continue",
                Reason::QuotaExhausted,
            ),
        ]);
    }

    #[test]
    fn sixteenth_round_rules_hold_for_neighbouring_wordings() {
        assert_reasons(&[
            // Accounts locked, in Chinese too, even on a 429.
            (429, "您的账号已被锁定，请联系客服", Reason::KeyRejected),
            (
                403,
                "This account is locked pending review",
                Reason::KeyRejected,
            ),
            (
                401,
                "IAM Certification failed for this request",
                Reason::KeyRejected,
            ),
            // Tokens valid but without the permission or the region.
            (
                401,
                "Resource not accessible by integration (models: read)",
                Reason::PermissionDenied,
            ),
            (
                403,
                "No permission to access this model",
                Reason::PermissionDenied,
            ),
            (
                400,
                "This model is unavailable in your region",
                Reason::PermissionDenied,
            ),
            // Allowances used up for good.
            (
                400,
                "total request limit reached for the free tier",
                Reason::QuotaExhausted,
            ),
            (
                400,
                "You exceeded the max file count; delete some files",
                Reason::QuotaExhausted,
            ),
            // Caps on what one request carries.
            (
                400,
                "The file is too large (limit 20MB)",
                Reason::PayloadTooLarge,
            ),
            (
                400,
                "Too many images in one request",
                Reason::PayloadTooLarge,
            ),
            // Content checks.
            (
                400,
                "Output content filtered by the provider",
                Reason::ContentFilter,
            ),
            (
                400,
                "Rejected: safety violation detected",
                Reason::ContentFilter,
            ),
            // Requests the server cannot take as written, even on a 500.
            (
                500,
                "This model does not support images",
                Reason::MalformedRequest,
            ),
            (
                500,
                "only one completion choice can be generated",
                Reason::MalformedRequest,
            ),
            (
                200,
                "Unexpected endpoint or method. (GET /models)",
                Reason::MalformedRequest,
            ),
            (400, "model is required", Reason::MalformedRequest),
            // A memory guard that refused to load a model is the server's capacity.
            (
                404,
                "Loading aborted: insufficient system resources",
                Reason::Overloaded,
            ),
            // A percent-encoded message is decoded before its phrases are searched.
            (403, "Incorrect%20API%20key%20provided", Reason::KeyRejected),
            (
                429,
                "Rate%20limit%20exceeded%3A%20try%20later",
                Reason::RateLimited,
            ),
            (
                400,
                "Your%20credit%20balance%20is%20too%20low",
                Reason::QuotaExhausted,
            ),
        ]);
        // Stream errors: llama.cpp's `error:` line, and a bare object after the events.
        assert_bodies(&[
            (
                200,
                "data: {\"choices\":[]}\n\nerror: {\"code\":400,\"message\":\"prompt is longer than the context size\"}\n",
                Reason::ContextOverflow,
            ),
            (
                200,
                "data: {\"choices\":[{\"delta\":{}}]}\n\n{\"code\":50001,\"message\":\"The inference failed unexpectedly\"}",
                Reason::ServerError,
            ),
            // A normal stream stays a success.
            (
                200,
                "data: {\"choices\":[{\"delta\":{\"content\":\"no error here\"}}]}\n\ndata: [DONE]\n",
                Reason::Success,
            ),
        ]);
    }

    #[test]
    fn fifteenth_round_rules_hold_for_neighbouring_wordings() {
        assert_reasons(&[
            // Capacity and maintenance on a 429 are the server's, not the caller's limit.
            (
                429,
                "All workers are at full capacity right now",
                Reason::Overloaded,
            ),
            (
                429,
                "cluster at maximum capacity, retry shortly",
                Reason::Overloaded,
            ),
            (
                429,
                "This deployment is under maintenance",
                Reason::Overloaded,
            ),
            // A limit stated in a short window's units is a rate limit whatever the type.
            (429, "credit_limit: 120 RPM exceeded", Reason::RateLimited),
            (429, "credit_limit reached: 50000 TPM", Reason::RateLimited),
            // Something other than a model said not to exist is the request's mistake...
            (
                400,
                "The function you forced does not exist",
                Reason::MalformedRequest,
            ),
            (400, "file-abc does not exist", Reason::MalformedRequest),
            // ...a model, a deployment, an endpoint or a version is missing.
            (400, "The model foo-9 does not exist", Reason::ModelNotFound),
            (
                422,
                "The requested version does not exist",
                Reason::ModelNotFound,
            ),
            (404, "Thread thr_1 does not exist", Reason::ModelNotFound),
            // A kind of credential the API does not take, and a credential that lacks
            // something the call needs.
            (
                400,
                "OAuth access tokens are not supported here",
                Reason::KeyRejected,
            ),
            (
                401,
                "API keys are not supported by this endpoint",
                Reason::KeyRejected,
            ),
            (
                401,
                "unauthorized: the token does not have the models scope",
                Reason::PermissionDenied,
            ),
            (
                403,
                "Your key does not have access to the batch API",
                Reason::PermissionDenied,
            ),
            // Bedrock's use-case form.
            (
                403,
                "Submit the use case details form for Anthropic models",
                Reason::PermissionDenied,
            ),
            // The wrong API of a deployment.
            (
                404,
                "This API is not supported for the deployment",
                Reason::MalformedRequest,
            ),
            // Gateways relaying an upstream limit.
            (
                429,
                "upstream rate limited, slow down",
                Reason::UpstreamRateLimited,
            ),
            (
                429,
                "Error from provider(429): too many requests",
                Reason::UpstreamRateLimited,
            ),
            // Guardrails that refused, on any status; a guardrail named without a refusal is
            // no content filter.
            (
                400,
                "Prompt blocked by the PII guardrail",
                Reason::ContentFilter,
            ),
            (
                500,
                "blocked by guardrail: jailbreak",
                Reason::ContentFilter,
            ),
            (
                424,
                "Response blocked due to security configurations",
                Reason::ContentFilter,
            ),
            (400, "Violated guardrail policy", Reason::ContentFilter),
            (
                400,
                "The guardrail version is invalid",
                Reason::MalformedRequest,
            ),
        ]);
        assert_bodies(&[
            // A 499 that reached the caller: the server gave up on the request.
            (499, r#"{"error":{"code":499,"message":"cancelled","status":"CANCELLED"}}"#, Reason::ServerError),
            // An object in place of the message stands for its `error`.
            (
                400,
                r#"{"error":{"message":{"error":"Violated content safety policy","scores":{"x":0.9}}}}"#,
                Reason::ContentFilter,
            ),
            // Cloudflare's beacon on a size page is no challenge; its block page is a block.
            (
                413,
                "<html><head><title>413 Request Entity Too Large</title></head><body>nginx<script>a.src='/cdn-cgi/challenge-platform/scripts/jsd/main.js'</script></body></html>",
                Reason::PayloadTooLarge,
            ),
            (
                403,
                "<div id=\"cf-error-details\"><h1>Sorry, you have been blocked</h1></div>",
                Reason::BlockedByWaf,
            ),
            (
                403,
                "<html><head><title>Just a moment...</title></head><body><script>window._cf_chl_opt={}</script></body></html>",
                Reason::BlockedByWaf,
            ),
        ]);
        // A 200 whose answer a filter stopped; the filter's results alone are no stop.
        for (body, want) in [
            (
                r#"{"choices":[{"finish_reason":"content_filter","index":0}]}"#,
                Reason::ContentFilter,
            ),
            (
                r#"{"choices":[{"finish_reason" : "content_filter"}]}"#,
                Reason::ContentFilter,
            ),
            (
                r#"{"status":"incomplete","incomplete_details":{"reason":"content_filter"}}"#,
                Reason::ContentFilter,
            ),
            (
                r#"{"candidates":[{"finishReason":"PROHIBITED_CONTENT"}]}"#,
                Reason::ContentFilter,
            ),
            (
                r#"{"candidates":[{"finishReason": "SPII"}]}"#,
                Reason::ContentFilter,
            ),
            (
                r#"{"candidates":[{"finishReason":"STOP"}]}"#,
                Reason::Success,
            ),
            (
                r#"{"choices":[{"finish_reason":"stop","content_filter_results":{"hate":{"filtered":false}}}]}"#,
                Reason::Success,
            ),
            (
                r#"{"choices":[{"message":{"content":"the word content_filter"},"finish_reason":"stop"}]}"#,
                Reason::Success,
            ),
        ] {
            assert_eq!(reason_of(Provider::Azure, 200, &[], body), want, "{body}");
        }
    }

    #[test]
    fn twelfth_round_rules_hold_for_neighbouring_wordings() {
        let cases: &[(u16, &str, Reason)] = &[
            // A relay's word filter, on any status.
            (500, "sensitive words detected", Reason::ContentFilter),
            (400, "sensitive_words_detected", Reason::ContentFilter),
            (
                400,
                "We've limited access to this content for safety reasons.",
                Reason::ContentFilter,
            ),
            (
                400,
                "Sorry! We've encountered an issue with repetitive patterns in your prompt.",
                Reason::MalformedRequest,
            ),
            // A gateway's upstream that failed, on the gateway's own 4xx.
            (
                403,
                "Upstream request failed: [server_error] Upstream response was not valid JSON",
                Reason::ServerError,
            ),
            (
                400,
                "finishConnect(..) failed: Connection refused: backend-7/10.0.0.1:80",
                Reason::ServerError,
            ),
            // The upstream's own words decide otherwise.
            (
                403,
                "Upstream request failed: [403] This model is not available in your region.",
                Reason::PermissionDenied,
            ),
            // Wrong place or wrong API surface.
            (
                404,
                "No handler found on route. Please double check your URL.",
                Reason::MalformedRequest,
            ),
            (
                401,
                "Model foo is not supported for format oa-compat",
                Reason::MalformedRequest,
            ),
            (
                400,
                "The requested model is not available for integrator \"vscode-chat\".",
                Reason::PermissionDenied,
            ),
            (
                400,
                "Request payload size exceeds the limit: 20971520 bytes.",
                Reason::PayloadTooLarge,
            ),
            // A gateway relaying its upstream's limit.
            (
                429,
                "[groq/llama-4] [429]: rate limited (reset after 12s)",
                Reason::UpstreamRateLimited,
            ),
            (
                429,
                "All credentials for model m are cooling down via provider p",
                Reason::UpstreamRateLimited,
            ),
        ];
        assert_reasons(cases);
        // A firewall's plain-text 403; the same words in a JSON error are the API's.
        assert_bodies(&[
            (403, "Your request was blocked.", Reason::BlockedByWaf),
            (403, "error code: 1020", Reason::BlockedByWaf),
            (504, "error code: 504", Reason::ServerError),
            (
                403,
                r#"{"error":{"message":"Your request was blocked."}}"#,
                Reason::PermissionDenied,
            ),
        ]);
    }

    #[test]
    fn eleventh_round_rules_hold_for_neighbouring_wordings() {
        let cases: &[(u16, &str, Reason)] = &[
            (
                500,
                "could not start: backend not found: llama-cpp",
                Reason::ModelNotFound,
            ),
            (
                400,
                "Only llama-3, qwen allowed now, your model gpt-4",
                Reason::ModelNotFound,
            ),
            (400, "model fade out", Reason::ModelNotFound),
            (
                401,
                "Please request a subscription to use this service",
                Reason::PermissionDenied,
            ),
        ];
        assert_reasons(cases);
        let shapes: &[(u16, &str, Reason)] = &[
            // MiniMax's `base_resp`, inside a 200 as on an error status; 0 is a success.
            (
                200,
                r#"{"id":"1","base_resp":{"status_code":1008,"status_msg":"insufficient balance"}}"#,
                Reason::QuotaExhausted,
            ),
            (
                200,
                r#"{"id":"1","choices":[],"base_resp":{"status_code":0,"status_msg":"success"}}"#,
                Reason::Success,
            ),
            (
                200,
                r#"{"base_resp":{"status_code":1002,"status_msg":"rate limit exceeded (RPM)"}}"#,
                Reason::RateLimited,
            ),
            // CLOVA Studio's `status` object.
            (
                400,
                r#"{"status":{"code":"40082","message":"model fade out"},"result":null}"#,
                Reason::ModelNotFound,
            ),
            (
                429,
                r#"{"status":{"code":"42901","message":"Too many requests"},"result":null}"#,
                Reason::RateLimited,
            ),
            // An error inside a 200 that nothing places: the server took the request and
            // failed.
            (
                200,
                r#"{"error":"XML syntax error on line 3: unexpected EOF"}"#,
                Reason::ServerError,
            ),
            (
                200,
                "data: {\"error\":{\"message\":\"something broke\"}}\n\n",
                Reason::ServerError,
            ),
            // OpenAI's Responses API: a failed response inside the stream.
            (
                200,
                "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"id\":\"r\",\"error\":{\"code\":\"context_length_exceeded\",\"message\":\"Your input exceeds the context window of this model.\"}}}\n\n",
                Reason::ContextOverflow,
            ),
            (
                200,
                "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"error\":null}}\n\n",
                Reason::Success,
            ),
        ];
        assert_bodies(shapes);
    }

    #[test]
    fn tenth_round_rules_hold_for_neighbouring_wordings() {
        let cases: &[(u16, &str, Reason)] = &[
            // Spent money and paid-only models, on any status that is not a 5xx.
            (
                400,
                "Your credits have been exhausted.",
                Reason::QuotaExhausted,
            ),
            (
                400,
                "No usable credits left on this key",
                Reason::QuotaExhausted,
            ),
            (
                400,
                "Please top up your credits to continue",
                Reason::QuotaExhausted,
            ),
            (
                400,
                "The account has run out of funds",
                Reason::QuotaExhausted,
            ),
            (
                403,
                "Your plan does not include this model",
                Reason::QuotaExhausted,
            ),
            (
                404,
                "gpt-x is not available on the free tier",
                Reason::QuotaExhausted,
            ),
            // A 402 usage limit that lifts by itself is a window; with money, a week or a
            // day in it, a wall.
            (
                402,
                "Usage limit reached; it resets at 18:00 UTC",
                Reason::RateLimited,
            ),
            (
                402,
                "Key limit exceeded, wait a few minutes",
                Reason::RateLimited,
            ),
            (402, "quota used up for this window", Reason::RateLimited),
            (
                402,
                "Usage limit reached. Add credit or try again later",
                Reason::QuotaExhausted,
            ),
            (
                402,
                "Weekly usage limit reached, try again next week",
                Reason::QuotaExhausted,
            ),
            (
                402,
                "Daily quota reached, retry later",
                Reason::QuotaExhausted,
            ),
            (402, "Insufficient balance", Reason::QuotaExhausted),
            // On a 429 only the words "usage limit" count ("Rate limit exceeded" is every
            // rate limit).
            (
                429,
                "You have hit your usage limits, please try again shortly",
                Reason::RateLimited,
            ),
            (
                429,
                "Monthly usage limit exceeded, try again next month",
                Reason::QuotaExhausted,
            ),
            // Throttles named on a 400.
            (400, "Request was throttled", Reason::RateLimited),
            (
                400,
                "Too many requests per minute for this key",
                Reason::RateLimited,
            ),
            (
                400,
                "Slow down: try again in 20 seconds",
                Reason::RateLimited,
            ),
            (
                400,
                "too many concurrent requests for this account",
                Reason::RateLimited,
            ),
            (
                400,
                "bad request, please fix the schema",
                Reason::MalformedRequest,
            ),
            // Capacity on a 429.
            (
                429,
                "This model is at capacity right now",
                Reason::Overloaded,
            ),
            (429, "Server overloaded, come back soon", Reason::Overloaded),
            // Context wording, on a 4xx or a 5xx, unless a throttle or a cap below the
            // window is named beside it.
            (
                400,
                "Prompt is over the maximum context",
                Reason::ContextOverflow,
            ),
            (400, "max_model_len is 4096", Reason::ContextOverflow),
            (
                500,
                "the context window was exceeded",
                Reason::ContextOverflow,
            ),
            (
                400,
                "Too many tokens in the prompt",
                Reason::ContextOverflow,
            ),
            (
                400,
                "Too many tokens, please wait before trying again",
                Reason::RateLimited,
            ),
            (
                400,
                "prompt length (9000) should not exceed max_num_tokens (8192)",
                Reason::PayloadTooLarge,
            ),
            // A valid key that may not do this, even beside authentication wording.
            (
                401,
                "Authentication Error: only master key may call this route",
                Reason::PermissionDenied,
            ),
            (
                401,
                "Authentication Error: key expired",
                Reason::KeyRejected,
            ),
            // A missing model, even beside permission wording, on a 400 as on a 404.
            (
                400,
                "The model x does not exist or you do not have access to it",
                Reason::ModelNotFound,
            ),
            (
                400,
                "You do not have access to model x",
                Reason::PermissionDenied,
            ),
            (
                401,
                "Model is disabled for this workspace",
                Reason::PermissionDenied,
            ),
            // The rest of the round.
            (
                400,
                "Enroll in Trusted Access for Cyber to use this",
                Reason::ContentFilter,
            ),
            (400, "image size exceeds 5 MB", Reason::PayloadTooLarge),
            (
                400,
                "image dimensions exceed max allowed size: 8000 pixels",
                Reason::PayloadTooLarge,
            ),
            (
                403,
                "Path not allowed by this proxy",
                Reason::MalformedRequest,
            ),
            (502, "unknown parameter: foo", Reason::MalformedRequest),
            (504, "FUNCTION_INVOCATION_TIMEOUT", Reason::Timeout),
            (400, "account is deactivated", Reason::KeyRejected),
        ];
        assert_reasons(cases);
        // Shapes: NestJS's `error` names the status and `message` says what went wrong; a
        // gateway's in-band `error_message`; SageMaker's 424 relays its container's status;
        // Werkzeug's generic 500 page names no overload of its own; a `ModelError` type is
        // SageMaker's only on a 424.
        let shapes: &[(u16, &str, Reason)] = &[
            (
                403,
                r#"{"statusCode":403,"error":"Forbidden","message":"Path not allowed"}"#,
                Reason::MalformedRequest,
            ),
            (
                429,
                r#"{"error":"Too Many Requests","message":"You have exceeded your usage limits. Please try again later."}"#,
                Reason::RateLimited,
            ),
            (
                200,
                r#"data: {"error_type":"bad_request","error_message":"maximum context length is 8192 tokens"}"#,
                Reason::ContextOverflow,
            ),
            (
                424,
                r#"{"Message":"Received client error (400) from primary with message \"bad input\"."}"#,
                Reason::MalformedRequest,
            ),
            (
                424,
                r#"{"Message":"Received server error (500) from primary with message \"<title>500 Internal Server Error</title> The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.\""}"#,
                Reason::ServerError,
            ),
            (
                424,
                r#"{"Message":"Received client error (422) from primary with message \"Input validation error: inputs must have less than 1024 tokens\""}"#,
                Reason::ContextOverflow,
            ),
            (
                401,
                r#"{"type":"error","error":{"type":"ModelError","message":"Model is disabled"}}"#,
                Reason::PermissionDenied,
            ),
            (
                424,
                r#"{"__type":"ModelError","message":"The model failed"}"#,
                Reason::ServerError,
            ),
        ];
        assert_bodies(shapes);
    }

    #[test]
    fn ninth_round_rules_hold_for_neighbouring_wordings() {
        let cases: &[(u16, &str, Reason)] = &[
            // A model still loading, or a hosted function degraded: come back later.
            (400, "Model llama-3 is not ready yet.", Reason::Overloaded),
            (
                503,
                "model qwen2 is not ready yet, retry",
                Reason::Overloaded,
            ),
            (
                400,
                "Function 'abc': DEGRADED function cannot be invoked",
                Reason::Overloaded,
            ),
            // Context overflow said plainly enough for a 500.
            (
                500,
                "input length 9000 exceeds maximum input length 4096",
                Reason::ContextOverflow,
            ),
            (
                500,
                "Prompt exceeds the maximum input length of the model",
                Reason::ContextOverflow,
            ),
            (
                500,
                "failed: the context window is full, reduce the input",
                Reason::ContextOverflow,
            ),
            // A token without the scope it needs, on a 401.
            (
                401,
                "The `inference` permission is required for this route",
                Reason::PermissionDenied,
            ),
            // A cap the account set pauses the model: a wall, not a window.
            (
                429,
                "You have reached the set inference limit; the model service has been paused",
                Reason::QuotaExhausted,
            ),
            (429, "SetLimitExceeded", Reason::QuotaExhausted),
            // A daily allowance on a 429 that names no end.
            (
                429,
                "Number of output tokens has exceeded your daily rate limit",
                Reason::QuotaExhausted,
            ),
            (429, "daily token limit reached", Reason::QuotaExhausted),
            // The resource or workspace behind the key is switched off.
            (
                403,
                "Your resource has been blocked due to a policy violation",
                Reason::KeyRejected,
            ),
            (
                402,
                "This workspace has been deactivated",
                Reason::KeyRejected,
            ),
            // No provider behind a router serves the model.
            (
                400,
                "Model foo/bar is not supported by provider fireworks",
                Reason::ModelNotFound,
            ),
            (
                404,
                "model x is not supported by any provider you enabled",
                Reason::ModelNotFound,
            ),
            // A request sent to the wrong place.
            (
                404,
                "Not supported in the v1/completions endpoint",
                Reason::MalformedRequest,
            ),
            (
                404,
                "Resource not found. Check the URL you called.",
                Reason::MalformedRequest,
            ),
        ];
        assert_reasons(cases);
    }

    /// The phrase table against aho-corasick's own overlapping search over the lowercased
    /// text (the reading the classifier had before the table): the same families for every
    /// phrase alone, in upper case, inside other text, overlapping, split over pieces, and
    /// for generated texts built from phrase fragments.
    #[test]
    fn the_phrase_table_finds_what_an_overlapping_search_finds() {
        use super::{Scanner, Signals, FAMILIES};
        use aho_corasick::AhoCorasick;

        let mut phrases: Vec<&str> = Vec::new();
        let mut bits_of: Vec<u64> = Vec::new();
        for (family, list) in FAMILIES {
            for phrase in list {
                phrases.push(phrase);
                bits_of.push(1 << family as u32);
            }
        }
        let oracle = AhoCorasick::new(&phrases).unwrap();
        let expected = |text: &str| {
            let lower = text.to_ascii_lowercase();
            oracle
                .find_overlapping_iter(&lower)
                .fold(0u64, |bits, m| bits | bits_of[m.pattern().as_usize()])
        };
        let mut texts: Vec<String> = Vec::new();
        for phrase in &phrases {
            texts.push(phrase.to_string());
            texts.push(phrase.to_uppercase());
            texts.push(format!("xx {phrase}yy"));
        }
        // Fragments glued together: overlaps and near misses.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..6 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let phrase = phrases[(seed % phrases.len() as u64) as usize];
                let cut = (seed >> 20) as usize % (phrase.len() + 1);
                let piece = phrase.get(..cut).unwrap_or(phrase);
                if seed & (1 << 40) != 0 {
                    text.push_str(&piece.to_uppercase());
                } else {
                    text.push_str(piece);
                }
                if seed & (1 << 41) != 0 {
                    text.push(' ');
                }
            }
            texts.push(text);
        }
        for text in &texts {
            assert_eq!(Signals::scan(text).0, expected(text), "{text:?}");
            // The same text in two pieces, cut anywhere on a character boundary.
            for cut in (0..=text.len())
                .filter(|c| text.is_char_boundary(*c))
                .step_by(3)
            {
                let mut scanner = Scanner::new();
                scanner.feed(&text[..cut]);
                scanner.feed(&text[cut..]);
                assert_eq!(scanner.finish().0, expected(text), "{text:?} cut at {cut}");
            }
        }
    }
}

/// The two-run scan and the gathering of pieces against the plain single-run scan.
#[cfg(test)]
mod split_tests {
    use super::{Phrases, Scanner, FAMILIES, GATHER, SPLIT_MIN, START};

    /// A small xorshift generator: the same texts on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn phrases() -> Vec<&'static str> {
        FAMILIES
            .iter()
            .flat_map(|(_, list)| list.iter().copied())
            .collect()
    }

    /// A text of about `len` bytes made of whole phrases, phrase prefixes (a phrase left
    /// unfinished keeps the automaton deep), upper-case copies, spaces and other bytes.
    fn text(rng: &mut Rng, phrases: &[&str], len: usize) -> Vec<u8> {
        let mut text = Vec::new();
        while text.len() < len {
            let phrase = phrases[rng.below(phrases.len())].as_bytes();
            match rng.below(6) {
                0 => text.push(b' '),
                1 => text.push(b"x.:_-0"[rng.below(6)]),
                2 => text.extend_from_slice(&phrase[..rng.below(phrase.len() + 1)]),
                3 => text.extend(phrase.iter().map(u8::to_ascii_uppercase)),
                _ => text.extend_from_slice(phrase),
            }
        }
        text.truncate(len);
        text
    }

    /// A phrase placed so that it crosses `at` (where a run other than the first starts).
    fn across(rng: &mut Rng, phrases: &[&str], len: usize, at: usize) -> Vec<u8> {
        let mut text = text(rng, phrases, len);
        let phrase = phrases[rng.below(phrases.len())].as_bytes();
        let from = at.saturating_sub(rng.below(phrase.len() + 1));
        let end = (from + phrase.len()).min(text.len());
        text[from..end].copy_from_slice(&phrase[..end - from]);
        text
    }

    #[test]
    fn two_interleaved_runs_find_what_one_run_finds() {
        let p = Phrases::get();
        let phrases = phrases();
        let longest = phrases.iter().map(|s| s.len()).max().unwrap();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut checked = 0;
        for round in 0..40 {
            // Every length from a few bytes to well past twice the longest phrase.
            for len in 0..=3 * longest + 8 {
                let sample = if round % 2 == 0 {
                    text(&mut rng, &phrases, len)
                } else {
                    // Across a cut between two parts, for two, three or four runs.
                    let ways = 2 + rng.below(3);
                    let cut = (1 + rng.below(ways - 1)) * (len / ways);
                    across(&mut rng, &phrases, len, cut)
                };
                // From the start state and from the state a prefix leaves behind (a phrase
                // begun before the text).
                let lead_len = rng.below(longest);
                let lead = text_state(p, &text(&mut rng, &phrases, lead_len));
                for state in [START, lead] {
                    let single = p.scan_single(state, &sample);
                    let split = [
                        p.scan(state, &sample),
                        p.scan_runs::<2>(state, &sample),
                        p.scan_runs::<3>(state, &sample),
                        p.scan_runs::<4>(state, &sample),
                    ];
                    for (n, found) in split.into_iter().enumerate() {
                        assert_eq!(
                            found,
                            single,
                            "{:?} from state {state}, way {n}",
                            String::from_utf8_lossy(&sample)
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000);
        assert!(
            SPLIT_MIN < 2 * longest,
            "texts on both sides of the split length are tried"
        );
    }

    fn text_state(p: &Phrases, text: &[u8]) -> u32 {
        p.scan_single(START, text).0
    }

    #[test]
    fn pieces_gathered_or_not_are_scanned_as_one_text() {
        let p = Phrases::get();
        let phrases = phrases();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..400 {
            // Pieces of every size: single bytes, short fields, pieces that overflow the
            // buffer and pieces longer than it, with phrases across their boundaries.
            let mut pieces: Vec<String> = Vec::new();
            for _ in 0..rng.below(8) + 1 {
                let len = match rng.below(4) {
                    0 => rng.below(4),
                    1 => rng.below(80),
                    2 => rng.below(GATHER),
                    _ => GATHER / 2 + rng.below(2 * GATHER),
                };
                // A cut through a character of the Chinese phrase becomes U+FFFD.
                let piece = text(&mut rng, &phrases, len);
                pieces.push(String::from_utf8_lossy(&piece).into_owned());
            }
            let whole = pieces.concat();
            let mut scanner = Scanner::new();
            for piece in &pieces {
                scanner.feed(piece);
            }
            assert_eq!(
                scanner.finish().0,
                p.scan_single(START, whole.as_bytes()).1,
                "{pieces:?}"
            );
        }
    }
}
