using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using PeftHost.Serving.Completions;

namespace PeftHost.Serving.OpenAi;

/// <summary>GET /v1/models, and vLLM's POST /v1/load_lora_adapter and /v1/unload_lora_adapter.</summary>
internal sealed class AdapterEndpoints(ServedModel model, OpenAiServerOptions options, AdapterRoot? root)
{
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    // The base and every adapter, as vLLM lists them (an adapter's parent is the base).
    public async Task ModelsAsync(HttpContext context)
    {
        var data = new JsonArray
        {
            new JsonObject
            {
                ["id"] = model.BaseName, ["object"] = "model", ["created"] = _created, ["owned_by"] = "pefthost", ["root"] = model.BaseName,
                ["parent"] = null, ["max_model_len"] = model.ContextSize,
            },
        };
        foreach (string adapter in model.Adapters)
            data.Add(new JsonObject
            {
                ["id"] = adapter, ["object"] = "model", ["created"] = _created, ["owned_by"] = "pefthost", ["root"] = model.FolderOf(adapter),
                ["parent"] = model.BaseName, ["max_model_len"] = model.ContextSize,
            });
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(new JsonObject { ["object"] = "list", ["data"] = data }.ToJsonString(OpenAiJson.Options), context.RequestAborted).ConfigureAwait(false);
    }

    public async Task LoadAsync(HttpContext context)
    {
        string name, path;
        bool hotswap;
        using (RequestBody body = await RequestBody.ReadAsync(context, options.MaxBodyBytes).ConfigureAwait(false))
        {
            name = body.RequiredString("lora_name");
            path = body.RequiredString("lora_path");
            hotswap = body.Bool("hotswap") ?? body.Bool("load_inplace") ?? false;
        }
        if (root is null)
            throw new ServingRequestException("Loading adapters at run time is off: start the server with --adapter-root DIR to allow adapters from under DIR.", "lora_path", "runtime_adapters_disabled");
        string folder = root.Resolve(path);
        bool replaced = hotswap && model.Adapters.Contains(name);
        try
        {
            await model.LoadAdapterAsync(name, folder, hotswap).ConfigureAwait(false);
        }
        catch (KeyNotFoundException e)
        {
            // From the plugins: no plugin serves the adapter's peft_type (a bad request, not an unknown model).
            throw new ServingRequestException(e.Message, "lora_path", "unsupported");
        }
        await context.Response.WriteAsync($"Success: LoRA adapter '{name}' {(replaced ? "hotswapped" : "added")} successfully.", context.RequestAborted).ConfigureAwait(false);
    }

    public async Task UnloadAsync(HttpContext context)
    {
        string name;
        using (RequestBody body = await RequestBody.ReadAsync(context, options.MaxBodyBytes).ConfigureAwait(false))
            name = body.RequiredString("lora_name");
        if (name == model.BaseName) throw new ServingRequestException($"'{name}' is the base model; only adapters can be unloaded.", "lora_name");
        if (!model.Adapters.Contains(name))
            throw new ServingRequestException($"The adapter '{name}' is not loaded (adapters: {string.Join(", ", model.Adapters)}).", "lora_name", "model_not_found", 404);
        await model.UnloadAdapterAsync(name).ConfigureAwait(false);
        await context.Response.WriteAsync($"Success: LoRA adapter '{name}' removed successfully.", context.RequestAborted).ConfigureAwait(false);
    }
}
