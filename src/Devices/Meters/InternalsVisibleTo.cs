using System.Runtime.CompilerServices;

// The tests inject file-reading errors (RAPL permission denied) that a root test run cannot produce for real.
[assembly: InternalsVisibleTo("ParetoPrune.Devices.Tests")]
