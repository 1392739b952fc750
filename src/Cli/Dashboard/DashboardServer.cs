using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ParetoPrune.Cli.Dashboard;

/// <summary>
/// <c>paretoprune dashboard RUN… [--storage URL --study NAME…]</c>: a page on loopback that follows searches while they
/// run, local and shared side by side. The page polls <c>/api/studies</c> (every study's <see cref="StudySnapshot"/>,
/// read fresh from its store) and draws each study side
/// by side: its stage progress, the accuracy/cost points by stage with the exported front, the hypervolume so far and
/// the trials table. Read-only: it never writes a study, so it runs beside the search that does.
/// </summary>
public sealed class DashboardServer(IReadOnlyList<DashboardStudy> studies, IPEndPoint endpoint) : IAsyncDisposable
{
    WebApplication? app;

    public Uri Address { get; private set; } = new("http://127.0.0.1/");

    public async Task StartAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => { k.AddServerHeader = false; k.Listen(endpoint); });
        builder.Services.AddRoutingCore();
        builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning).AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
        var web = builder.Build();
        web.MapGet("/", () => Results.Content(DashboardPage.Html, "text/html; charset=utf-8"));
        web.MapGet("/api/studies", () => Results.Json(studies.Select(StudySnapshot.Read).ToList(), Json.Options));
        await web.StartAsync(ct);
        app = web;
        Address = new Uri(web.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    public async ValueTask DisposeAsync()
    {
        if (app is not null) await app.DisposeAsync();
    }
}
